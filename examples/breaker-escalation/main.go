// Command breaker-escalation shows how llm.Router keeps a conversation going
// while the cloud model is down: the local model asks to escalate, the remote
// model fails until the circuit breaker opens, the Router stops calling it
// and answers locally (Fallback), and once the open period has passed one
// probe call closes the breaker again.
//
// Both models are llmtest fakes, so it needs no Ollama, no Gemini key and no
// network:
//
//	go run ./examples/breaker-escalation
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
)

// openFor is how long the breaker stays open in this walkthrough. The spec's
// default (breaker.DefaultOpenFor) is 60 minutes; one second keeps `go run`
// short. The test runs the walkthrough inside testing/synctest, where the
// wait takes no real time at all.
const openFor = time.Second

// failureThreshold is how many failed escalations open the breaker here (the
// spec's default, breaker.DefaultFailureThreshold, is 5 within 300 s).
const failureThreshold = 3

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "breaker-escalation:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// The local model knows its limits: it gives a short answer and asks for
	// the cloud model with the escalate marker.
	local := llmtest.NewFake("qwen2.5-coder:7b")
	local.Default = &llmtest.Reply{Text: "Short answer: quicksort is usually fastest, merge sort is stable. " + llm.EscalateMarker}

	// The cloud model is overloaded for its first three calls (HTTP 503, as
	// llm/gemini reports it), then answers.
	outage := talos.E(talos.CodeGeminiConnection, "gemini.Chat", "Gemini API call failed",
		&llm.APIError{Provider: "gemini", StatusCode: 503, Status: "UNAVAILABLE", Message: "The model is overloaded."})
	remote := llmtest.NewFake("gemini-2.5-flash",
		llmtest.Reply{Err: outage}, llmtest.Reply{Err: outage}, llmtest.Reply{Err: outage})
	remote.Default = &llmtest.Reply{Text: "In depth: quicksort averages O(n log n), merge sort guarantees it and is stable, heapsort sorts in place."}

	// The breaker guarding the cloud model. llm.Classify is the classifier
	// for model calls: a 503 is a failure, a content refusal is not, a 429
	// waits out its Retry-After.
	br, err := breaker.New(breaker.Config{
		Name:              "gemini",
		FailureThreshold:  failureThreshold,
		OpenFor:           []time.Duration{openFor},
		HalfOpenProbes:    1,
		HalfOpenSuccesses: 1,
		Classifier:        llm.Classify,
	}, nil)
	if err != nil {
		return err
	}
	router, err := llm.NewRouter(llm.RouterConfig{}, local, remote, br)
	if err != nil {
		return err
	}

	ask := func(turn int) error {
		res, err := router.Route(ctx, llm.RouteRequest{Messages: []llm.Message{
			{Role: llm.RoleUser, Content: "Compare quicksort, merge sort and heapsort in depth."},
		}})
		if err != nil {
			return fmt.Errorf("turn %d: %w", turn, err)
		}
		fmt.Fprintf(w, "turn %d: answered by %s (escalated=%t fallback=%t reason=%s)\n",
			turn, res.ModelName, res.Escalated, res.Fallback, res.EscalationReason)
		if res.EscalationError != nil {
			code := talos.CodeOf(res.EscalationError)
			why := "the cloud model failed"
			if breaker.IsRejection(res.EscalationError) {
				why = "the breaker rejected the call without trying"
			}
			fmt.Fprintf(w, "  escalation: %s: %s\n", code, why)
		}
		switch res.BreakerState {
		case breaker.Closed:
			fmt.Fprintf(w, "  breaker closed: %d/%d failures in the window", br.Stats().FailuresInWindow, failureThreshold)
		case breaker.Open:
			fmt.Fprintf(w, "  breaker open: calls rejected for another %s", br.Remaining().Round(100*time.Millisecond))
		default:
			fmt.Fprintf(w, "  breaker %s", res.BreakerState)
		}
		fmt.Fprintf(w, "; cloud calls so far: %d\n", len(remote.Calls()))
		fmt.Fprintf(w, "  answer: %s\n", res.Response.Message.Content)
		return nil
	}

	fmt.Fprintln(w, "# The cloud model is down: each escalation fails and counts toward the breaker.")
	for turn := 1; turn <= failureThreshold; turn++ {
		if err := ask(turn); err != nil {
			return err
		}
	}

	fmt.Fprintln(w, "# The breaker is open: the Router answers locally at once, the cloud is not called.")
	if err := ask(failureThreshold + 1); err != nil {
		return err
	}

	fmt.Fprintf(w, "# Waiting %s for the open period to end...\n", br.Remaining().Round(100*time.Millisecond))
	select {
	case <-time.After(br.Remaining() + 10*time.Millisecond):
	case <-ctx.Done():
		return ctx.Err()
	}
	fmt.Fprintf(w, "breaker %s: the next escalation is a probe\n", br.State())

	fmt.Fprintln(w, "# The cloud model has recovered: the probe succeeds and closes the breaker.")
	if err := ask(failureThreshold + 2); err != nil {
		return err
	}
	st := br.Stats()
	fmt.Fprintf(w, "breaker stats: %d failures, %d rejected, %d trips, %d successes\n", st.Failures, st.Rejected, st.Trips, st.Successes)
	return nil
}
