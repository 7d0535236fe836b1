package llm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
)

// DefaultFallbackText is the answer when the local model asked to escalate,
// escalation was not possible, and nothing but the marker was left.
const DefaultFallbackText = "I can't answer this fully right now: it needs more than I can do locally, and my extended reasoning is unavailable at the moment. Please try again later or simplify the request."

// RouterConfig configures a Router.
type RouterConfig struct {
	// Prompts are the system prompts; nil means the validated defaults.
	Prompts *Prompts
	// FallbackText replaces an answer that was only the escalate marker
	// when escalation is not possible (DefaultFallbackText).
	FallbackText string
	Logger       *slog.Logger
}

// Router sends each request to the local model first and escalates to the
// remote model when the local one asks for it (EscalateMarker) or fails.
// Escalation goes through a circuit breaker: it never happens while the
// breaker rejects calls, nor when the caller says the conversation is flagged
// (for example by the prompt-injection firewall). When escalation fails, the
// local answer is returned with Fallback set. Each Route calls the local model
// at most once and the remote at most once: there is no escalation loop.
type Router struct {
	local, remote Model
	br            *breaker.Breaker
	prompts       *Prompts
	fallback      string
	log           *slog.Logger
}

// NewRouter returns a Router. remote may be nil (local only). br guards the
// remote model; nil means a breaker with the spec defaults and Classify.
func NewRouter(cfg RouterConfig, local, remote Model, br *breaker.Breaker) (*Router, error) {
	const op = "llm.NewRouter"
	if local == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "the local model is nil: the router is local-first and needs one")
	}
	r := &Router{local: local, remote: remote, br: br, prompts: cfg.Prompts, fallback: cfg.FallbackText, log: cfg.Logger}
	if r.log == nil {
		r.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if r.fallback == "" {
		r.fallback = DefaultFallbackText
	}
	if r.prompts == nil {
		p, err := NewPrompts(PromptConfig{Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		r.prompts = p
	}
	if r.br == nil && remote != nil {
		b, err := breaker.New(breaker.Config{Name: "escalation", Classifier: Classify, Logger: cfg.Logger}, nil)
		if err != nil {
			return nil, err
		}
		r.br = b
	}
	return r, nil
}

// Breaker returns the breaker guarding the remote model (nil when there is
// no remote model).
func (r *Router) Breaker() *breaker.Breaker { return r.br }

// RouteRequest is one user turn for the Router.
type RouteRequest struct {
	// Messages without a system prompt: the Router adds the target's.
	Messages []Message
	Tools    []Tool
	// Catalog, if set, is appended to the system prompt (a tool catalog).
	Catalog   string
	MaxTokens int
	// NoEscalate keeps the request local whatever happens (set it when the
	// firewall flagged the conversation: flagged text must not leave the
	// machine).
	NoEscalate bool
	// Gate, when set, is asked just before an escalation (never for a turn
	// the local model answers): an error refuses the escalation, becomes
	// Result.EscalationError and the local answer is returned with
	// Fallback set. A daily token limit is such a gate.
	Gate func(ctx context.Context) error
	// Stream, when set, receives the answer's text as each model generates
	// it, with the model's target: a local answer that turns out to be the
	// escalate marker is followed by the escalation model's, so a consumer
	// starts over when the target changes. Returning an error stops the
	// generation. The Result still carries the whole final answer, which
	// wins over what was streamed (a fallback replaces a bare marker).
	Stream func(t Target, delta string) error
}

// Result is the Router's answer.
type Result struct {
	Response *Response
	// ModelName is the model that produced Response.
	ModelName string
	// Escalated is true when the remote model answered.
	Escalated bool
	// Fallback is true when escalation was wanted but not possible or
	// failed, and Response is the local answer.
	Fallback bool
	// EscalationReason says why escalation was wanted: "marker",
	// "local-error" or "".
	EscalationReason string
	// EscalationError is why escalation failed or was skipped (a T205
	// rejection while the breaker is open, the remote model's error, …).
	EscalationError error
	// Usage is the total over every call of this turn.
	Usage Usage
	// BreakerState is the breaker's state after the turn (Closed when there
	// is no remote model).
	BreakerState breaker.State
}

// Route answers one turn: local first, escalating when needed and allowed.
func (r *Router) Route(ctx context.Context, req RouteRequest) (*Result, error) {
	const op = "llm.Router.Route"
	res := &Result{}
	defer func() {
		if r.br != nil {
			res.BreakerState = r.br.State()
		}
	}()

	localResp, localErr := r.call(ctx, r.local, TargetLocal, req)
	if localErr == nil {
		res.Usage = res.Usage.Add(localResp.Usage)
		if !strings.Contains(localResp.Message.Content, EscalateMarker) {
			res.Response, res.ModelName = localResp, localResp.Model
			return res, nil
		}
		res.EscalationReason = "marker"
	} else {
		if ctx.Err() != nil {
			return nil, localErr // the caller gave up: do not escalate on its behalf
		}
		res.EscalationReason = "local-error"
	}

	var escErr, gateErr error
	if req.Gate != nil && r.remote != nil && !req.NoEscalate {
		gateErr = req.Gate(ctx)
	}
	switch {
	case r.remote == nil:
		escErr = talos.Errorf(talos.CodeConfigInvalid, op, "no escalation model is configured")
	case req.NoEscalate:
		escErr = talos.Errorf(talos.CodePolicyDenied, op, "escalation is disabled for this conversation (flagged)")
	case gateErr != nil:
		escErr = gateErr
	default:
		remoteResp, err := breaker.Execute(ctx, r.br, func(ctx context.Context) (*Response, error) {
			return r.call(ctx, r.remote, TargetEscalation, req)
		})
		if err == nil {
			res.Usage = res.Usage.Add(remoteResp.Usage)
			// The escalation model has no marker to give; strip a stray one
			// rather than loop.
			remoteResp.Message.Content = stripMarker(remoteResp.Message.Content)
			res.Response, res.ModelName, res.Escalated = remoteResp, remoteResp.Model, true
			r.log.InfoContext(ctx, "ESCALATED", "reason", res.EscalationReason, "model", remoteResp.Model)
			return res, nil
		}
		escErr = err
	}
	res.EscalationError = escErr

	if localErr != nil {
		code := talos.CodeOf(localErr)
		if code == "" {
			code = talos.CodeLocalModelLoad
		}
		return nil, talos.E(code, op,
			fmt.Sprintf("both the local model and escalation failed: local: %v; escalation: %v", localErr, escErr),
			errors.Join(localErr, escErr))
	}
	r.log.WarnContext(ctx, "FALLBACK_TO_LOCAL", "reason", res.EscalationReason, "category", string(Categorize(escErr)), "escalation_error", escErr.Error())
	resp := *localResp
	resp.Message.Content = stripMarker(resp.Message.Content)
	if resp.Message.Content == "" {
		resp.Message.Content = r.fallback
	}
	res.Response, res.ModelName, res.Fallback = &resp, resp.Model, true
	return res, nil
}

func (r *Router) call(ctx context.Context, m Model, t Target, req RouteRequest) (*Response, error) {
	sys, err := r.prompts.Message(t, req.Catalog)
	if err != nil {
		return nil, err
	}
	msgs := make([]Message, 0, len(req.Messages)+1)
	msgs = append(msgs, sys)
	for _, msg := range req.Messages {
		if msg.Role != RoleSystem { // the Router owns the system prompt
			msgs = append(msgs, msg)
		}
	}
	creq := Request{Messages: msgs, Tools: req.Tools, MaxTokens: req.MaxTokens}
	if req.Stream != nil {
		creq.Stream = func(delta string) error { return req.Stream(t, delta) }
	}
	resp, err := m.Chat(ctx, creq)
	if err == nil && resp == nil {
		err = talos.Errorf(talos.CodeModelBadResponse, "llm.Router.Route", "the %s model returned no response and no error", t)
	}
	return resp, err
}

func stripMarker(s string) string {
	return strings.TrimSpace(strings.ReplaceAll(s, EscalateMarker, ""))
}
