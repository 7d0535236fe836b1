package gemini

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/llm"
	"google.golang.org/genai"
)

// DefaultModel is the escalation model ("Gemini Flash" in the spec).
const DefaultModel = "gemini-2.5-flash"

// Config configures a Client.
type Config struct {
	// APIKey for the Gemini API (required). Read it from GEMINI_API_KEY in
	// the caller; it is never logged.
	APIKey string
	// Model name (DefaultModel).
	Model string
	// BaseURL overrides the API endpoint (a proxy, or a test server).
	BaseURL string
	// APIVersion overrides the API version ("v1beta" by default in the SDK).
	APIVersion string
	// Timeout bounds each call (0: only the caller's context).
	Timeout time.Duration
	// HTTPClient (a default client if nil). Its transport is wrapped to read
	// Retry-After headers.
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Client is a Gemini model. It is safe for concurrent use.
type Client struct {
	cfg Config
	sdk *genai.Client
	log *slog.Logger

	mu     sync.Mutex
	ctxLen int
}

var _ llm.Model = (*Client)(nil)

// New returns a Client. It does not contact the API.
func New(ctx context.Context, cfg Config) (*Client, error) {
	const op = "gemini.New"
	if strings.TrimSpace(cfg.APIKey) == "" {
		return nil, talos.Errorf(talos.CodeSecretMissing, op, "the Gemini API key is empty: set GEMINI_API_KEY")
	}
	if cfg.Timeout < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Timeout = %s is invalid: must be positive, 0 for none", cfg.Timeout)
	}
	if cfg.Model == "" {
		cfg.Model = DefaultModel
	}
	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		*hc = *cfg.HTTPClient
	}
	base := hc.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	hc.Transport = retryAfterTransport{base: base}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	sdk, err := genai.NewClient(ctx, &genai.ClientConfig{
		APIKey:      cfg.APIKey,
		Backend:     genai.BackendGeminiAPI,
		HTTPClient:  hc,
		HTTPOptions: genai.HTTPOptions{BaseURL: cfg.BaseURL, APIVersion: cfg.APIVersion},
	})
	if err != nil {
		// The SDK's message never contains the key.
		return nil, talos.E(talos.CodeConfigInvalid, op, "creating the Gemini client failed", err)
	}
	return &Client{cfg: cfg, sdk: sdk, log: log}, nil
}

// holder receives the Retry-After header of the response to one call.
type holder struct {
	mu         sync.Mutex
	retryAfter string
}

type holderKey struct{}

type retryAfterTransport struct{ base http.RoundTripper }

func (t retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if resp != nil && resp.StatusCode >= 400 {
		if h, ok := req.Context().Value(holderKey{}).(*holder); ok {
			h.mu.Lock()
			h.retryAfter = resp.Header.Get("Retry-After")
			h.mu.Unlock()
		}
	}
	return resp, err
}

// Chat implements llm.Model.
func (c *Client) Chat(ctx context.Context, req llm.Request) (*llm.Response, error) {
	const op = "gemini.Chat"
	h := &holder{}
	ctx = context.WithValue(ctx, holderKey{}, h)
	if c.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.cfg.Timeout)
		defer cancel()
	}
	contents, sys := toContents(req.Messages)
	cfg := &genai.GenerateContentConfig{SystemInstruction: sys, Tools: toTools(req.Tools)}
	if req.MaxTokens > 0 {
		cfg.MaxOutputTokens = int32(min(req.MaxTokens, 1<<30))
	}
	start := time.Now()
	var acc accumulator
	if req.Stream == nil {
		resp, err := c.sdk.Models.GenerateContent(ctx, c.cfg.Model, contents, cfg)
		if err != nil {
			return nil, c.mapErr(ctx, op, err, h)
		}
		acc.add(resp)
	} else {
		for resp, err := range c.sdk.Models.GenerateContentStream(ctx, c.cfg.Model, contents, cfg) {
			if err != nil {
				return nil, c.mapErr(ctx, op, err, h)
			}
			text := acc.add(resp)
			if acc.blocked() {
				break
			}
			if text != "" {
				if err := req.Stream(text); err != nil {
					return nil, err
				}
			}
		}
	}
	if b := acc.block(); b != nil {
		b.PromptHash = llm.PromptHash(req.Messages)
		c.log.WarnContext(ctx, "SAFETY_BLOCK_DETECTED", "event_type", "SAFETY_BLOCK", "stage", b.Stage, "block_reason", b.Reason,
			"categories", b.Categories, "request_hash", b.PromptHash, "model_version", acc.modelVersion)
		return nil, talos.E(talos.CodeSafetyBlock, op,
			fmt.Sprintf("Gemini refused the %s for content reasons (%s); this is not an outage, rephrase or answer locally", b.Stage, b.Reason), b)
	}
	if !acc.sawCandidate {
		return nil, talos.Errorf(talos.CodeModelBadResponse, op, "Gemini model %q returned no candidate and no block reason", c.cfg.Model)
	}
	name := acc.modelVersion
	if name == "" {
		name = c.cfg.Model
	}
	return &llm.Response{
		Model:        name,
		Message:      llm.Message{Role: llm.RoleAssistant, Content: acc.text.String(), ToolCalls: acc.calls},
		FinishReason: string(acc.finish),
		Usage:        acc.usage,
		Duration:     time.Since(start),
	}, nil
}

// blockedFinish are the finish reasons that mean a content refusal.
var blockedFinish = map[genai.FinishReason]bool{
	genai.FinishReasonSafety:                 true,
	genai.FinishReasonBlocklist:              true,
	genai.FinishReasonProhibitedContent:      true,
	genai.FinishReasonSPII:                   true,
	genai.FinishReasonImageSafety:            true,
	genai.FinishReasonImageProhibitedContent: true,
	genai.FinishReasonRecitation:             true,
}

type accumulator struct {
	text         strings.Builder
	calls        []llm.ToolCall
	usage        llm.Usage
	finish       genai.FinishReason
	modelVersion string
	sawCandidate bool
	blk          *llm.SafetyBlock
}

// add folds one (possibly partial) response in and returns its new text.
func (a *accumulator) add(r *genai.GenerateContentResponse) string {
	if r == nil {
		return ""
	}
	if r.ModelVersion != "" {
		a.modelVersion = r.ModelVersion
	}
	if u := r.UsageMetadata; u != nil {
		a.usage = llm.Usage{PromptTokens: int(u.PromptTokenCount), CompletionTokens: int(u.CandidatesTokenCount + u.ThoughtsTokenCount)}
	}
	if pf := r.PromptFeedback; pf != nil && pf.BlockReason != "" && pf.BlockReason != genai.BlockedReasonUnspecified {
		a.blk = &llm.SafetyBlock{Reason: string(pf.BlockReason), Stage: "prompt", Categories: flagged(pf.SafetyRatings)}
		return ""
	}
	if len(r.Candidates) == 0 || r.Candidates[0] == nil {
		return ""
	}
	cand := r.Candidates[0]
	a.sawCandidate = true
	if cand.FinishReason != "" {
		a.finish = cand.FinishReason
	}
	if blockedFinish[cand.FinishReason] {
		a.blk = &llm.SafetyBlock{Reason: string(cand.FinishReason), Stage: "response", Categories: flagged(cand.SafetyRatings)}
	}
	var b strings.Builder
	if cand.Content != nil {
		for _, p := range cand.Content.Parts {
			switch {
			case p == nil || p.Thought:
			case p.FunctionCall != nil:
				a.calls = append(a.calls, llm.ToolCall{ID: p.FunctionCall.ID, Name: p.FunctionCall.Name, Arguments: p.FunctionCall.Args})
			case p.Text != "":
				b.WriteString(p.Text)
			}
		}
	}
	a.text.WriteString(b.String())
	return b.String()
}

func (a *accumulator) blocked() bool           { return a.blk != nil }
func (a *accumulator) block() *llm.SafetyBlock { return a.blk }

// flagged lists the harm categories that were blocked or rated MEDIUM/HIGH.
func flagged(rs []*genai.SafetyRating) []string {
	var out []string
	for _, r := range rs {
		if r != nil && (r.Blocked || r.Probability == genai.HarmProbabilityHigh || r.Probability == genai.HarmProbabilityMedium) {
			out = append(out, string(r.Category))
		}
	}
	return out
}

// Info implements llm.Model: the model's input token limit from the API
// (GET models/{model}), cached.
func (c *Client) Info(ctx context.Context) (llm.Info, error) {
	c.mu.Lock()
	n := c.ctxLen
	c.mu.Unlock()
	if n == 0 {
		m, err := c.sdk.Models.Get(ctx, c.cfg.Model, nil)
		if err != nil {
			return llm.Info{}, c.mapErr(ctx, "gemini.Info", err, nil)
		}
		n = int(m.InputTokenLimit)
		c.mu.Lock()
		c.ctxLen = n
		c.mu.Unlock()
	}
	return llm.Info{Name: c.cfg.Model, Provider: "gemini", ContextLength: n}, nil
}

// Model returns the configured model name.
func (c *Client) Model() string { return c.cfg.Model }

func (c *Client) mapErr(ctx context.Context, op string, err error, h *holder) error {
	if errors.Is(ctx.Err(), context.Canceled) || errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: cancelled by the caller: %w", op, context.Canceled)
	}
	var ae genai.APIError
	if !errors.As(err, &ae) {
		var pae *genai.APIError
		if errors.As(err, &pae) {
			ae = *pae
		} else {
			if ctx.Err() != nil {
				return talos.E(talos.CodeGeminiConnection, op, "Gemini did not answer in time", errors.Join(err, ctx.Err()))
			}
			return talos.E(talos.CodeGeminiConnection, op, "Gemini API unreachable; check the network and the base URL", err)
		}
	}
	e := &llm.APIError{Provider: "gemini", StatusCode: ae.Code, Status: ae.Status, Message: ae.Message}
	if d, ok := RetryDelay(ae.Details); ok {
		e.RetryAfter, e.HasRetryAfter = d, true
	} else if h != nil {
		h.mu.Lock()
		v := h.retryAfter
		h.mu.Unlock()
		if d, ok := breaker.ParseRetryAfter(v, time.Now()); ok {
			e.RetryAfter, e.HasRetryAfter = d, true
		}
	}
	switch {
	case ae.Code == http.StatusTooManyRequests || ae.Status == "RESOURCE_EXHAUSTED":
		if dailyQuota(ae.Details) {
			// The server's retryDelay for a per-day quota is a short
			// per-minute-style hint; the quota comes back only at the
			// reset. llm.Classify trips the breaker for RetryAfter.
			now := time.Now()
			reset := QuotaReset(now)
			if d := reset.Sub(now); !e.HasRetryAfter || d > e.RetryAfter {
				e.RetryAfter, e.HasRetryAfter = d, true
			}
			return talos.E(talos.CodeGeminiQuota, op, fmt.Sprintf(
				"Gemini daily quota exhausted; the breaker opens and escalation is off until the quota resets at midnight Pacific time (%s)",
				reset.UTC().Format(time.RFC3339)), e)
		}
		return talos.E(talos.CodeGeminiRateLimit, op, "Gemini rate limit exceeded; the breaker waits the server's retry delay", e)
	case ae.Code == http.StatusUnauthorized || ae.Code == http.StatusForbidden || hasReason(ae.Details, "API_KEY_INVALID"):
		return talos.E(talos.CodeSecretMissing, op, "the Gemini API key was rejected; set a valid GEMINI_API_KEY", e)
	}
	return talos.E(talos.CodeGeminiConnection, op, "Gemini API call failed", e)
}

// QuotaReset returns when Gemini's per-day quotas next reset after now:
// midnight Pacific time (ai.google.dev/gemini-api/docs/rate-limits). When
// the time zone database is missing it uses UTC-8, which is never early
// (an hour late in summer).
func QuotaReset(now time.Time) time.Time {
	loc := pacific()
	y, m, d := now.In(loc).Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, loc)
}

var pacific = sync.OnceValue(func() *time.Location {
	if loc, err := time.LoadLocation("America/Los_Angeles"); err == nil {
		return loc
	}
	return time.FixedZone("UTC-8", -8*3600)
})

// RetryDelay returns the delay of a google.rpc.RetryInfo entry of an API
// error's details ("retryDelay": "37s").
func RetryDelay(details []map[string]any) (time.Duration, bool) {
	for _, d := range details {
		t, _ := d["@type"].(string)
		if !strings.HasSuffix(t, "google.rpc.RetryInfo") {
			continue
		}
		s, _ := d["retryDelay"].(string)
		if v, ok := breaker.ParseRetryAfter(s, time.Time{}); ok && strings.HasSuffix(strings.TrimSpace(s), "s") {
			return v, true
		}
	}
	return 0, false
}

// dailyQuota reports whether a QuotaFailure detail names a per-day quota.
func dailyQuota(details []map[string]any) bool {
	for _, d := range details {
		t, _ := d["@type"].(string)
		if !strings.HasSuffix(t, "google.rpc.QuotaFailure") {
			continue
		}
		vs, _ := d["violations"].([]any)
		for _, v := range vs {
			m, _ := v.(map[string]any)
			id, _ := m["quotaId"].(string)
			if strings.Contains(id, "PerDay") {
				return true
			}
		}
	}
	return false
}

func hasReason(details []map[string]any, reason string) bool {
	for _, d := range details {
		if r, _ := d["reason"].(string); r == reason {
			return true
		}
	}
	return false
}

func toContents(msgs []llm.Message) ([]*genai.Content, *genai.Content) {
	var sys []string
	var out []*genai.Content
	for _, m := range msgs {
		switch m.Role {
		case llm.RoleSystem:
			sys = append(sys, m.Content)
		case llm.RoleAssistant:
			c := &genai.Content{Role: genai.RoleModel}
			if m.Content != "" {
				c.Parts = append(c.Parts, &genai.Part{Text: m.Content})
			}
			for _, tc := range m.ToolCalls {
				c.Parts = append(c.Parts, &genai.Part{FunctionCall: &genai.FunctionCall{ID: tc.ID, Name: tc.Name, Args: tc.Arguments}})
			}
			out = append(out, c)
		case llm.RoleTool:
			out = append(out, &genai.Content{Role: genai.RoleUser, Parts: []*genai.Part{{FunctionResponse: &genai.FunctionResponse{
				ID: m.ToolCallID, Name: m.ToolName, Response: map[string]any{"output": m.Content}}}}})
		default:
			out = append(out, &genai.Content{Role: genai.RoleUser, Parts: []*genai.Part{{Text: m.Content}}})
		}
	}
	if len(sys) == 0 {
		return out, nil
	}
	return out, &genai.Content{Parts: []*genai.Part{{Text: strings.Join(sys, "\n\n")}}}
}

func toTools(in []llm.Tool) []*genai.Tool {
	if len(in) == 0 {
		return nil
	}
	decls := make([]*genai.FunctionDeclaration, 0, len(in))
	for _, t := range in {
		d := &genai.FunctionDeclaration{Name: t.Name, Description: t.Description}
		if t.Parameters != nil {
			d.ParametersJsonSchema = t.Parameters
		}
		decls = append(decls, d)
	}
	return []*genai.Tool{{FunctionDeclarations: decls}}
}
