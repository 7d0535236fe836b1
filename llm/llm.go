package llm

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
)

// Role is the author of a Message.
type Role string

// Roles of chat messages.
const (
	RoleSystem    Role = "system"
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	RoleTool      Role = "tool" // the result of a tool call
)

// Message is one chat message.
type Message struct {
	Role    Role
	Content string
	// ToolCalls are the calls an assistant message asks for.
	ToolCalls []ToolCall
	// ToolName and ToolCallID identify the call a RoleTool message answers.
	ToolName   string
	ToolCallID string
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is a JSON Schema object describing the arguments, for
	// example {"type":"object","properties":{"path":{"type":"string"}},"required":["path"]}.
	// Nil means no arguments.
	Parameters map[string]any
}

// ToolCall is one call of a Tool the model asked for.
type ToolCall struct {
	ID        string
	Name      string
	Arguments map[string]any
}

// Request is one chat turn.
type Request struct {
	// Messages in order; a system prompt, if any, first.
	Messages []Message
	// Tools the model may call.
	Tools []Tool
	// MaxTokens caps the answer (0: the model's default).
	MaxTokens int
	// Stream, when set, receives the answer's text as it is generated;
	// returning an error stops the generation and Chat returns that error.
	// Chat still returns the whole Response at the end.
	Stream func(delta string) error
}

// Usage counts tokens, as the model reported them.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
}

// Total is PromptTokens + CompletionTokens.
func (u Usage) Total() int { return u.PromptTokens + u.CompletionTokens }

// Add returns the sum of two usages.
func (u Usage) Add(v Usage) Usage {
	return Usage{PromptTokens: u.PromptTokens + v.PromptTokens, CompletionTokens: u.CompletionTokens + v.CompletionTokens}
}

// Response is a model's answer.
type Response struct {
	// Model is the name the backend reported (or the configured one).
	Model string
	// Message is the assistant's message: text and/or tool calls.
	Message Message
	// FinishReason as the backend reported it ("stop", "length", "STOP", …).
	FinishReason string
	Usage        Usage
	Duration     time.Duration
}

// Info describes a model.
type Info struct {
	Name     string
	Provider string // "ollama", "gemini", "fake"
	Local    bool   // runs on this machine
	// ContextLength is the real context window in tokens, as the backend
	// reports it (Ollama /api/show, Gemini inputTokenLimit); 0 if unknown.
	ContextLength int
}

// Model is a chat model. Implementations are safe for concurrent use.
type Model interface {
	// Chat sends one turn and returns the answer. Errors carry a talos
	// code: T203/T204 for the local model, T200/T201/T202 for Gemini,
	// T206 for a content refusal, T207 for a response that cannot be used.
	Chat(ctx context.Context, req Request) (*Response, error)
	// Info describes the model; it may ask the backend once and cache.
	Info(ctx context.Context) (Info, error)
}

// APIError describes a failed HTTP call to a model API. Adapters put it in
// the cause chain of their *talos.Error so that Classify can read the status
// and the retry delay.
type APIError struct {
	Provider   string
	StatusCode int    // 0 when the request never got a response
	Status     string // for example RESOURCE_EXHAUSTED
	Message    string
	// RetryAfter is the server's requested delay (Retry-After header or
	// RetryInfo.retryDelay); HasRetryAfter says whether there was one. For
	// an exhausted daily quota (T202) the adapter sets it to the time until
	// the quota resets when that is longer.
	RetryAfter    time.Duration
	HasRetryAfter bool
}

// Error formats the API error.
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s API", e.Provider)
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " HTTP %d", e.StatusCode)
	}
	if e.Status != "" {
		fmt.Fprintf(&b, " %s", e.Status)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	if e.HasRetryAfter {
		fmt.Fprintf(&b, " (retry after %s)", e.RetryAfter)
	}
	return b.String()
}

// SafetyBlock is the cause of a T206 SAFETY_BLOCK error: the model refused
// the prompt or its own answer for content reasons. The service is healthy,
// so Classify never counts it as a failure.
type SafetyBlock struct {
	// Reason is the backend's reason: a Gemini promptFeedback.blockReason
	// such as SAFETY or PROHIBITED_CONTENT, or a finishReason such as SAFETY.
	Reason string
	// Stage is "prompt" (the prompt was blocked) or "response".
	Stage string
	// Categories are the harm categories the backend flagged, if any.
	Categories []string
	// PromptHash is PromptHash of the request, for correlating logs.
	PromptHash string
}

// Error formats the block.
func (s *SafetyBlock) Error() string {
	msg := fmt.Sprintf("%s blocked for content reasons (%s)", s.Stage, s.Reason)
	if len(s.Categories) > 0 {
		msg += " categories " + strings.Join(s.Categories, ",")
	}
	return msg
}

// PromptHash returns the first 16 hex characters of the SHA-256 of the
// request's message contents: what logs record instead of a prompt.
func PromptHash(msgs []Message) string {
	h := sha256.New()
	for _, m := range msgs {
		h.Write([]byte(m.Role))
		h.Write([]byte{0})
		h.Write([]byte(m.Content))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Classify is the breaker Classifier for model calls:
//
//   - a content refusal (T206) is a Success: the service answered;
//   - a cancelled context is Ignore;
//   - an exhausted daily quota (T202 GEMINI_QUOTA_EXCEEDED) is a Trip for
//     at least the error's RetryAfter (the time until the quota resets),
//     however short: retrying before the reset only burns calls;
//   - any other HTTP 429 follows breaker.RateLimitVerdict with the server's
//     retry delay (≤ 300 s waits it out + 1 s, > 300 s trips, none backs
//     off 5..60 s);
//   - everything else (network, 5xx, auth, timeouts, bad responses) is a
//     Failure.
func Classify(err error) breaker.Verdict {
	if err == nil {
		return breaker.Verdict{Kind: breaker.Success}
	}
	if errors.Is(err, talos.ErrSafetyBlock) {
		return breaker.Verdict{Kind: breaker.Success}
	}
	if errors.Is(err, context.Canceled) {
		return breaker.Verdict{Kind: breaker.Ignore}
	}
	var ae *APIError
	hasAPI := errors.As(err, &ae)
	if errors.Is(err, talos.ErrGeminiQuota) {
		v := breaker.Verdict{Kind: breaker.Trip}
		if hasAPI && ae.HasRetryAfter {
			v.Delay = ae.RetryAfter
		}
		return v
	}
	if hasAPI && ae.StatusCode == 429 {
		return breaker.RateLimitVerdict(ae.RetryAfter, ae.HasRetryAfter)
	}
	return breaker.Verdict{Kind: breaker.Failure}
}

// Text returns the concatenated content of the messages with role r.
func Text(msgs []Message, r Role) string {
	var parts []string
	for _, m := range msgs {
		if m.Role == r && m.Content != "" {
			parts = append(parts, m.Content)
		}
	}
	return strings.Join(parts, "\n")
}

// FailureCategory names the kind of a failed model call, for logs and
// metrics.
type FailureCategory string

// Failure categories, in the order Categorize checks them.
const (
	CategorySafetyBlock    FailureCategory = "SAFETY_BLOCK"
	CategoryRateLimit      FailureCategory = "RATE_LIMIT"
	CategoryNetwork        FailureCategory = "NETWORK"
	CategoryAuthentication FailureCategory = "AUTHENTICATION"
	CategoryAPIError       FailureCategory = "API_ERROR"
)

// Categorize returns err's category, checked in the spec's order: safety
// block, then rate limit (HTTP 429), then authentication (HTTP 401/403 or a
// rejected key), then API error for a response that came but could not be
// used (T207 MODEL_BAD_RESPONSE, which carries no HTTP status), then
// network (no HTTP response: a transport error or timeout), else API error. It reads typed errors (talos codes and
// *APIError), never numbers in the message (the spec's regex took "processed
// 404 items" for an HTTP 404). It returns "" for a nil error.
func Categorize(err error) FailureCategory {
	if err == nil {
		return ""
	}
	var ae *APIError
	hasAPI := errors.As(err, &ae)
	switch {
	case errors.Is(err, talos.ErrSafetyBlock):
		return CategorySafetyBlock
	case hasAPI && ae.StatusCode == 429, errors.Is(err, talos.ErrGeminiRateLimit), errors.Is(err, talos.ErrGeminiQuota):
		return CategoryRateLimit
	case hasAPI && (ae.StatusCode == 401 || ae.StatusCode == 403), errors.Is(err, talos.ErrSecretMissing):
		return CategoryAuthentication
	case errors.Is(err, talos.ErrModelBadResponse):
		// The service answered; its answer was unusable. Checked before
		// "no APIError means network", which it would otherwise match.
		return CategoryAPIError
	case !hasAPI:
		return CategoryNetwork
	}
	return CategoryAPIError
}

// HTTPStatus returns the HTTP status of the first *APIError in err's chain,
// or 0 when the call got no HTTP response.
func HTTPStatus(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.StatusCode
	}
	return 0
}
