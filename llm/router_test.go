package llm_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
)

var ask = llm.RouteRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: "prove the Riemann hypothesis"}}}

func newRouter(t *testing.T, local, remote *llmtest.Fake, br *breaker.Breaker) *llm.Router {
	t.Helper()
	var rm llm.Model
	if remote != nil {
		rm = remote
	}
	r, err := llm.NewRouter(llm.RouterConfig{}, local, rm, br)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestLocalAnswersFirst(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "42", Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 1}})
	remote := llmtest.NewFake("gemini")
	res, err := newRouter(t, local, remote, nil).Route(context.Background(), ask)
	if err != nil {
		t.Fatal(err)
	}
	if res.ModelName != "qwen" || res.Escalated || res.Fallback || res.Response.Message.Content != "42" || res.Usage.Total() != 11 {
		t.Fatalf("result = %+v", res)
	}
	if len(remote.Calls()) != 0 {
		t.Fatal("remote called for a local answer")
	}
	// The router put the local system prompt first.
	c := local.Calls()[0]
	if c.Messages[0].Role != llm.RoleSystem || c.Messages[0].Content != llm.DefaultLocalPrompt || c.Messages[1].Content != ask.Messages[0].Content {
		t.Fatalf("local request = %+v", c.Messages)
	}
}

func TestEscalateOnMarker(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "[ESCALATE]", Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 2}})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "Here is the proof sketch.", Usage: llm.Usage{PromptTokens: 20, CompletionTokens: 5}})
	r := newRouter(t, local, remote, nil)
	res, err := r.Route(context.Background(), ask)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Escalated || res.ModelName != "gemini" || res.EscalationReason != "marker" || res.Usage.Total() != 37 {
		t.Fatalf("result = %+v", res)
	}
	c := remote.Calls()[0]
	if c.Messages[0].Content != llm.DefaultEscalationPrompt || len(c.Messages) != 2 {
		t.Fatalf("remote request = %+v", c.Messages)
	}
	if res.BreakerState != breaker.Closed || r.Breaker().Stats().Successes != 1 {
		t.Fatalf("breaker = %+v", r.Breaker().Stats())
	}
}

func TestEscalateOnLocalError(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Err: talos.Errorf(talos.CodeLocalModelTime, "test", "timed out")})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "ok"})
	res, err := newRouter(t, local, remote, nil).Route(context.Background(), ask)
	if err != nil || !res.Escalated || res.EscalationReason != "local-error" {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

// Breaker OPEN → the local answer with fallback=true,
// and no escalation loop.
func TestBreakerOpenFallsBackToLocal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		br, _ := breaker.New(breaker.Config{Classifier: llm.Classify}, nil)
		br.Trip(0, "test")
		local := llmtest.NewFake("qwen", llmtest.Reply{Text: "Partial answer. [ESCALATE]"})
		remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "never"})
		res, err := newRouter(t, local, remote, br).Route(context.Background(), ask)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Fallback || res.Escalated || res.ModelName != "qwen" || res.Response.Message.Content != "Partial answer." {
			t.Fatalf("result = %+v", res)
		}
		if !errors.Is(res.EscalationError, talos.ErrCircuitOpen) || res.BreakerState != breaker.Open {
			t.Fatalf("escalation error = %v, state %s", res.EscalationError, res.BreakerState)
		}
		if len(local.Calls()) != 1 || len(remote.Calls()) != 0 {
			t.Fatalf("calls: local %d, remote %d; want 1, 0 (no loop)", len(local.Calls()), len(remote.Calls()))
		}
	})
}

func TestMarkerOnlyAnswerGetsFallbackText(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: " [ESCALATE] "})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Err: errors.New("503")})
	res, err := newRouter(t, local, remote, nil).Route(context.Background(), ask)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Fallback || res.Response.Message.Content != llm.DefaultFallbackText || res.EscalationError == nil {
		t.Fatalf("result = %+v", res)
	}
}

// Item 21: both failing → one error naming both.
func TestBothFail(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Err: talos.Errorf(talos.CodeLocalModelLoad, "test", "model not loaded")})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Err: talos.Errorf(talos.CodeGeminiConnection, "test", "unreachable")})
	_, err := newRouter(t, local, remote, nil).Route(context.Background(), ask)
	if !errors.Is(err, talos.ErrLocalModelLoad) || !errors.Is(err, talos.ErrGeminiConnection) || !strings.Contains(err.Error(), "both") {
		t.Fatalf("err = %v", err)
	}
}

func TestNoEscalateWhenFlaggedOrNoRemote(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "hmm [ESCALATE]"}, llmtest.Reply{Text: "[ESCALATE] x"})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "never"})
	req := ask
	req.NoEscalate = true
	res, err := newRouter(t, local, remote, nil).Route(context.Background(), req)
	if err != nil || !res.Fallback || len(remote.Calls()) != 0 || !errors.Is(res.EscalationError, talos.ErrPolicyDenied) {
		t.Fatalf("flagged: res = %+v, err = %v, remote calls %d", res, err, len(remote.Calls()))
	}
	res, err = newRouter(t, local, nil, nil).Route(context.Background(), ask)
	if err != nil || !res.Fallback || res.Response.Message.Content != "x" {
		t.Fatalf("local only: res = %+v, err = %v", res, err)
	}
}

func TestRemoteMarkerIsNotALoop(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "[ESCALATE]"})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "[ESCALATE] answer"})
	res, err := newRouter(t, local, remote, nil).Route(context.Background(), ask)
	if err != nil || res.Response.Message.Content != "answer" || len(local.Calls()) != 1 || len(remote.Calls()) != 1 {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
}

func TestCallerCancelDoesNotEscalate(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "x"})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "y"})
	_, err := newRouter(t, local, remote, nil).Route(ctx, ask)
	if !errors.Is(err, context.Canceled) || len(remote.Calls()) != 0 {
		t.Fatalf("err = %v, remote calls %d", err, len(remote.Calls()))
	}
}

// Remote failures trip the router's breaker; after that no more remote calls.
func TestRemoteFailuresTripBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		local := llmtest.NewFake("qwen")
		local.Default = &llmtest.Reply{Text: "[ESCALATE]"}
		remote := llmtest.NewFake("gemini")
		remote.Default = &llmtest.Reply{Err: talos.Errorf(talos.CodeGeminiConnection, "test", "down")}
		r := newRouter(t, local, remote, nil)
		for i := 0; i < 8; i++ {
			res, err := r.Route(context.Background(), ask)
			if err != nil || !res.Fallback {
				t.Fatalf("turn %d: %+v %v", i, res, err)
			}
		}
		if n := len(remote.Calls()); n != breaker.DefaultFailureThreshold {
			t.Fatalf("remote called %d times, want %d then fail fast", n, breaker.DefaultFailureThreshold)
		}
		if r.Breaker().State() != breaker.Open || r.Breaker().Remaining() != time.Hour {
			t.Fatalf("breaker = %+v", r.Breaker().Stats())
		}
	})
}

func TestNewRouterNeedsLocal(t *testing.T) {
	if _, err := llm.NewRouter(llm.RouterConfig{}, nil, nil, nil); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("err = %v", err)
	}
}

func TestRouterPassesToolsAndCatalog(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "[ESCALATE]"})
	remote := llmtest.NewFake("gemini", llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "ls", Arguments: map[string]any{"dir": "/"}}}})
	req := llm.RouteRequest{
		Messages:  []llm.Message{{Role: llm.RoleSystem, Content: "injected system text"}, {Role: llm.RoleUser, Content: "list /"}},
		Tools:     []llm.Tool{{Name: "ls"}},
		Catalog:   "TOOLS: ls(dir)",
		MaxTokens: 77,
	}
	res, err := newRouter(t, local, remote, nil).Route(context.Background(), req)
	if err != nil || len(res.Response.Message.ToolCalls) != 1 {
		t.Fatalf("res = %+v, err = %v", res, err)
	}
	for _, c := range append(local.Calls(), remote.Calls()...) {
		if len(c.Tools) != 1 || c.MaxTokens != 77 || len(c.Messages) != 2 {
			t.Fatalf("request = %+v", c)
		}
		if !strings.HasSuffix(c.Messages[0].Content, "\nTOOLS: ls(dir)") || strings.Contains(c.Messages[0].Content, "injected") {
			t.Fatalf("system message = %q", c.Messages[0].Content)
		}
	}
}

func TestStreamNamesTheTarget(t *testing.T) {
	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "[ESCALATE]"})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "the remote answer"})
	var got []string
	req := ask
	req.Stream = func(tg llm.Target, d string) error { got = append(got, string(tg)+":"+d); return nil }
	res, err := newRouter(t, local, remote, nil).Route(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"local:[ESCALATE]", "escalation:the ", "escalation:remote ", "escalation:answer"}
	if strings.Join(got, "|") != strings.Join(want, "|") || res.Response.Message.Content != "the remote answer" {
		t.Fatalf("streamed %q, answer %q; want %q", got, res.Response.Message.Content, want)
	}
	stop := errors.New("client went away")
	req.Stream = func(llm.Target, string) error { return stop }
	local.Push(llmtest.Reply{Text: "a local answer"})
	if _, err := newRouter(t, local, nil, nil).Route(context.Background(), req); !errors.Is(err, stop) {
		t.Fatalf("a stream error gave %v, want it returned", err)
	}
}

// A Gate is asked only when the router is about to escalate; its refusal
// keeps the answer local (Fallback) without touching the remote model or
// the breaker.
func TestGateRefusesEscalation(t *testing.T) {
	limit := talos.Errorf(talos.CodeTokenLimit, "test", "the daily token limit is reached")
	asked := 0
	gate := func(context.Context) error { asked++; return limit }

	local := llmtest.NewFake("qwen", llmtest.Reply{Text: "42"}, llmtest.Reply{Text: "Partly: [ESCALATE]"})
	remote := llmtest.NewFake("gemini", llmtest.Reply{Text: "never"})
	r := newRouter(t, local, remote, nil)
	req := ask
	req.Gate = gate
	res, err := r.Route(context.Background(), req)
	if err != nil || res.Fallback || asked != 0 {
		t.Fatalf("a local answer asked the gate: %+v %v (asked %d)", res, err, asked)
	}
	res, err = r.Route(context.Background(), req)
	if err != nil || !res.Fallback || res.Escalated || asked != 1 || !errors.Is(res.EscalationError, talos.ErrTokenLimit) ||
		res.Response.Message.Content != "Partly:" || len(remote.Calls()) != 0 || r.Breaker().State() != breaker.Closed {
		t.Fatalf("refused escalation: %+v %v (asked %d, remote calls %d)", res, err, asked, len(remote.Calls()))
	}
	// An open gate lets the escalation through.
	local.Push(llmtest.Reply{Text: "[ESCALATE]"})
	req.Gate = func(context.Context) error { return nil }
	if res, err := r.Route(context.Background(), req); err != nil || !res.Escalated || res.ModelName != "gemini" {
		t.Fatalf("open gate: %+v %v", res, err)
	}
}
