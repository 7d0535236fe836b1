package ollama

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/ollama/ollama/api"
	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/llm"
)

// Defaults.
const (
	// DefaultBaseURL is Ollama's default listen address.
	DefaultBaseURL = "http://127.0.0.1:11434"
	// DefaultKeepAlive is how long Ollama keeps a model loaded after a
	// request (Ollama's own default, 5 min).
	DefaultKeepAlive = 5 * time.Minute
)

// Config configures a Client.
type Config struct {
	// BaseURL of the Ollama server (DefaultBaseURL).
	BaseURL string
	// Model is the model Chat and Info use, for example "qwen2.5-coder:7b".
	Model string
	// KeepAlive for chat and Load requests (DefaultKeepAlive). Negative
	// keeps the model loaded forever.
	KeepAlive time.Duration
	// Timeout bounds each Chat (0: only the caller's context). Exceeding
	// it is T204.
	Timeout time.Duration
	// Options are Ollama model options sent with each chat (for example
	// {"num_ctx": 8192, "temperature": 0.2}).
	Options map[string]any
	// HTTPClient (http.DefaultClient if nil).
	HTTPClient *http.Client
	Logger     *slog.Logger
}

// Client talks to one Ollama server. It is safe for concurrent use.
type Client struct {
	cfg  Config
	api  *api.Client
	base string
	log  *slog.Logger

	mu    sync.Mutex
	ctxLn map[string]int // cached context lengths by model
}

var _ llm.Model = (*Client)(nil)

// New returns a Client. It does not contact the server.
func New(cfg Config) (*Client, error) {
	const op = "ollama.New"
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "BaseURL = %q is invalid: want http(s)://host:port", cfg.BaseURL)
	}
	if cfg.Timeout < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Timeout = %s is invalid: must be positive, 0 for none", cfg.Timeout)
	}
	if cfg.KeepAlive == 0 {
		cfg.KeepAlive = DefaultKeepAlive
	}
	hc := cfg.HTTPClient
	if hc == nil {
		hc = http.DefaultClient
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Client{cfg: cfg, api: api.NewClient(u, hc), base: cfg.BaseURL, log: log, ctxLn: map[string]int{}}, nil
}

// Chat implements llm.Model over /api/chat.
func (c *Client) Chat(ctx context.Context, req llm.Request) (*llm.Response, error) {
	const op = "ollama.Chat"
	if c.cfg.Model == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "no model is configured: set Config.Model (for example qwen2.5-coder:7b)")
	}
	if c.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, c.cfg.Timeout, errTimeout)
		defer cancel()
	}
	msgs, err := toAPIMessages(req.Messages)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "a tool call in the request cannot be encoded", err)
	}
	tools, err := toAPITools(req.Tools)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "a tool definition cannot be encoded for Ollama", err)
	}
	stream := req.Stream != nil
	opts := map[string]any{}
	for k, v := range c.cfg.Options {
		opts[k] = v
	}
	if req.MaxTokens > 0 {
		opts["num_predict"] = req.MaxTokens
	}
	areq := &api.ChatRequest{
		Model:     c.cfg.Model,
		Messages:  msgs,
		Stream:    &stream,
		KeepAlive: &api.Duration{Duration: c.cfg.KeepAlive},
		Tools:     tools,
		Options:   opts,
	}
	start := time.Now()
	var (
		content strings.Builder
		calls   []llm.ToolCall
		final   *api.ChatResponse
		cbErr   error
	)
	err = c.api.Chat(ctx, areq, func(r api.ChatResponse) error {
		if r.Message.Content != "" {
			content.WriteString(r.Message.Content)
			if req.Stream != nil {
				if err := req.Stream(r.Message.Content); err != nil {
					cbErr = err
					return err
				}
			}
		}
		for _, tc := range r.Message.ToolCalls {
			calls = append(calls, llm.ToolCall{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments.ToMap()})
		}
		if r.Done {
			rr := r
			final = &rr
		}
		return nil
	})
	if cbErr != nil {
		return nil, cbErr
	}
	if err != nil {
		return nil, c.mapErr(ctx, op, c.cfg.Model, err)
	}
	if final == nil {
		return nil, talos.Errorf(talos.CodeModelBadResponse, op, "Ollama at %s ended the answer of model %q without a final (done) message; the server may have crashed, check its log", c.base, c.cfg.Model)
	}
	name := final.Model
	if name == "" {
		name = c.cfg.Model
	}
	return &llm.Response{
		Model:        name,
		Message:      llm.Message{Role: llm.RoleAssistant, Content: content.String(), ToolCalls: calls},
		FinishReason: final.DoneReason,
		Usage:        llm.Usage{PromptTokens: final.PromptEvalCount, CompletionTokens: final.EvalCount},
		Duration:     time.Since(start),
	}, nil
}

// Info implements llm.Model: the configured model and its real context
// length from /api/show.
func (c *Client) Info(ctx context.Context) (llm.Info, error) {
	if c.cfg.Model == "" {
		return llm.Info{}, talos.Errorf(talos.CodeConfigInvalid, "ollama.Info", "no model is configured: set Config.Model (for example qwen2.5-coder:7b)")
	}
	n, err := c.ContextLength(ctx, c.cfg.Model)
	if err != nil {
		return llm.Info{}, err
	}
	return llm.Info{Name: c.cfg.Model, Provider: "ollama", Local: true, ContextLength: n}, nil
}

// ContextLength returns the context window the model was trained with, read
// from /api/show's model_info ("<architecture>.context_length"), cached per
// model. It is 0 when the server does not report one.
func (c *Client) ContextLength(ctx context.Context, model string) (int, error) {
	const op = "ollama.ContextLength"
	c.mu.Lock()
	n, ok := c.ctxLn[model]
	c.mu.Unlock()
	if ok {
		return n, nil
	}
	resp, err := c.api.Show(ctx, &api.ShowRequest{Model: model})
	if err != nil {
		return 0, c.mapErr(ctx, op, model, err)
	}
	n = contextLength(resp)
	c.mu.Lock()
	c.ctxLn[model] = n
	c.mu.Unlock()
	return n, nil
}

func contextLength(r *api.ShowResponse) int {
	if r.Details.ContextLength > 0 {
		return r.Details.ContextLength
	}
	arch, _ := r.ModelInfo["general.architecture"].(string)
	if v, ok := r.ModelInfo[arch+".context_length"]; ok && arch != "" {
		return toInt(v)
	}
	for k, v := range r.ModelInfo {
		if strings.HasSuffix(k, ".context_length") {
			return toInt(v)
		}
	}
	return 0
}

func toInt(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case json.Number:
		n, _ := x.Int64()
		return int(n)
	case int:
		return x
	}
	return 0
}

// Load makes Ollama load model and keep it for Config.KeepAlive (an empty
// generate request, Ollama's documented way to preload).
func (c *Client) Load(ctx context.Context, model string) error {
	return c.generateKeepAlive(ctx, "ollama.Load", model, c.cfg.KeepAlive)
}

// Unload makes Ollama unload model now (a generate request with
// keep_alive 0). It returns when Ollama has answered; use Resident to verify.
func (c *Client) Unload(ctx context.Context, model string) error {
	return c.generateKeepAlive(ctx, "ollama.Unload", model, 0)
}

func (c *Client) generateKeepAlive(ctx context.Context, op, model string, keep time.Duration) error {
	if model == "" {
		return talos.Errorf(talos.CodeConfigInvalid, op, "model name is empty")
	}
	stream := false
	err := c.api.Generate(ctx, &api.GenerateRequest{Model: model, Stream: &stream, KeepAlive: &api.Duration{Duration: keep}},
		func(api.GenerateResponse) error { return nil })
	if err != nil {
		return c.mapErr(ctx, op, model, err)
	}
	return nil
}

// Resident returns the names of the models Ollama has loaded (/api/ps).
// Ollama reports a model asked for without a tag under ":latest"
// ("tiny" runs as "tiny:latest"), so such a model is listed under both
// names: a caller that loaded "tiny" finds it resident.
func (c *Client) Resident(ctx context.Context) ([]string, error) {
	resp, err := c.api.ListRunning(ctx)
	if err != nil {
		return nil, c.mapErr(ctx, "ollama.Resident", "", err)
	}
	names := make([]string, 0, len(resp.Models))
	for _, m := range resp.Models {
		n := m.Name
		if n == "" {
			n = m.Model
		}
		names = append(names, n)
		if short, ok := strings.CutSuffix(n, ":latest"); ok && short != "" {
			names = append(names, short)
		}
	}
	return names, nil
}

var errTimeout = errors.New("the configured Timeout for one chat elapsed")

// mapErr turns an api/transport error into a talos error. A cancellation by
// the caller keeps context.Canceled in the chain.
func (c *Client) mapErr(ctx context.Context, op, model string, err error) error {
	what := "Ollama at " + c.base
	if model != "" {
		what += fmt.Sprintf(" (model %q)", model)
	}
	if ctx.Err() != nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if errors.Is(ctx.Err(), context.Canceled) {
			return fmt.Errorf("%s: %s: cancelled by the caller: %w", op, what, context.Canceled)
		}
		return talos.E(talos.CodeLocalModelTime, op, what+" did not answer in time; a first load of a large model can take minutes, raise the timeout or check the server", errors.Join(err, context.Cause(ctx)))
	}
	var se api.StatusError
	if errors.As(err, &se) {
		ae := &llm.APIError{Provider: "ollama", StatusCode: se.StatusCode, Status: se.Status, Message: se.ErrorMessage}
		if se.StatusCode == http.StatusNotFound {
			return talos.E(talos.CodeLocalModelLoad, op, what+" does not have the model; pull it with `ollama pull "+model+"`", ae)
		}
		return talos.E(talos.CodeLocalModelLoad, op, what+" answered with an error; check the Ollama log (not enough memory is the usual cause)", ae)
	}
	var ae api.AuthorizationError
	if errors.As(err, &ae) {
		return talos.E(talos.CodeLocalModelLoad, op, what+" refused the request (401); a local server needs no sign-in, check BaseURL", err)
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return talos.E(talos.CodeLocalModelLoad, op, what+" is unreachable; start it with `ollama serve` or fix the URL", err)
	}
	var se2 *json.SyntaxError
	if errors.As(err, &se2) {
		return talos.E(talos.CodeModelBadResponse, op, what+" sent a response that is not valid JSON", err)
	}
	// The api client turns an in-stream {"error": "..."} into a plain error.
	return talos.E(talos.CodeLocalModelLoad, op, what+" reported an error", err)
}

func toAPIMessages(in []llm.Message) ([]api.Message, error) {
	out := make([]api.Message, 0, len(in))
	for _, m := range in {
		am := api.Message{Role: string(m.Role), Content: m.Content, ToolName: m.ToolName, ToolCallID: m.ToolCallID}
		for i, tc := range m.ToolCalls {
			args := api.NewToolCallFunctionArguments()
			for k, v := range tc.Arguments {
				args.Set(k, v)
			}
			am.ToolCalls = append(am.ToolCalls, api.ToolCall{ID: tc.ID, Function: api.ToolCallFunction{Index: i, Name: tc.Name, Arguments: args}})
		}
		out = append(out, am)
	}
	return out, nil
}

func toAPITools(in []llm.Tool) (api.Tools, error) {
	if len(in) == 0 {
		return nil, nil
	}
	out := make(api.Tools, 0, len(in))
	for _, t := range in {
		params := map[string]any{"type": "object", "properties": map[string]any{}}
		if t.Parameters != nil {
			params = t.Parameters
		}
		b, err := json.Marshal(params)
		if err != nil {
			return nil, fmt.Errorf("tool %q parameters: %w", t.Name, err)
		}
		var fp api.ToolFunctionParameters
		if err := json.Unmarshal(b, &fp); err != nil {
			return nil, fmt.Errorf("tool %q parameters are not a JSON Schema object: %w", t.Name, err)
		}
		out = append(out, api.Tool{Type: "function", Function: api.ToolFunction{Name: t.Name, Description: t.Description, Parameters: fp}})
	}
	return out, nil
}
