package ollama_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
	"github.com/talos-ironclad/talos/llm/ollama"
	"github.com/talos-ironclad/talos/vram"
)

// fakeOllama speaks Ollama's wire format: /api/chat streams NDJSON (one JSON
// object per line, the last with "done": true and the token counts) or
// answers one object when "stream": false; /api/show, /api/generate, /api/ps.
type fakeOllama struct {
	script   llmtest.Script
	mu       sync.Mutex
	requests []map[string]any // decoded bodies, by arrival
	paths    []string
	resident []string
}

func (f *fakeOllama) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if r.Body != nil {
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &body)
	}
	f.mu.Lock()
	f.requests = append(f.requests, body)
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	switch r.URL.Path {
	case "/api/chat":
		f.chat(w, body)
	case "/api/show":
		fmt.Fprintf(w, `{"details":{"family":"qwen2"},"model_info":{"general.architecture":"qwen2","qwen2.context_length":%d,"qwen2.embedding_length":3584}}`, f.script.ContextLength)
	case "/api/generate":
		ka := fmt.Sprint(body["keep_alive"])
		f.mu.Lock()
		if ka == "0s" {
			f.resident = nil
			f.mu.Unlock()
			fmt.Fprintf(w, `{"model":%q,"created_at":"2026-11-23T18:00:00Z","response":"","done":true,"done_reason":"unload"}`+"\n", body["model"])
			return
		}
		f.resident = append(f.resident, fmt.Sprint(body["model"]))
		f.mu.Unlock()
		fmt.Fprintf(w, `{"model":%q,"created_at":"2026-11-23T18:00:00Z","response":"","done":true,"done_reason":"load"}`+"\n", body["model"])
	case "/api/ps":
		f.mu.Lock()
		defer f.mu.Unlock()
		var ms []string
		for _, m := range f.resident {
			ms = append(ms, fmt.Sprintf(`{"name":%q,"model":%q,"size":5000000000,"size_vram":5000000000,"context_length":4096}`, m, m))
		}
		fmt.Fprintf(w, `{"models":[%s]}`, strings.Join(ms, ","))
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeOllama) chat(w http.ResponseWriter, body map[string]any) {
	model := fmt.Sprint(body["model"])
	stream, _ := body["stream"].(bool)
	w.Header().Set("Content-Type", "application/x-ndjson")
	final := fmt.Sprintf(`"done":true,"done_reason":"stop","total_duration":1000,"prompt_eval_count":%d,"eval_count":%d`,
		f.script.Usage.PromptTokens, f.script.Usage.CompletionTokens)
	if f.script.ToolCall != nil {
		args, _ := json.Marshal(f.script.ToolCall.Arguments)
		fmt.Fprintf(w, `{"model":%q,"created_at":"2026-11-23T18:00:00Z","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":%q,"arguments":%s}}]},%s}`+"\n",
			model, f.script.ToolCall.Name, args, final)
		return
	}
	if !stream {
		text, _ := json.Marshal(f.script.Text)
		fmt.Fprintf(w, `{"model":%q,"created_at":"2026-11-23T18:00:00Z","message":{"role":"assistant","content":%s},%s}`+"\n", model, text, final)
		return
	}
	fl := w.(http.Flusher)
	for _, piece := range strings.SplitAfter(f.script.Text, " ") {
		text, _ := json.Marshal(piece)
		fmt.Fprintf(w, `{"model":%q,"created_at":"2026-11-23T18:00:00Z","message":{"role":"assistant","content":%s},"done":false}`+"\n", model, text)
		fl.Flush()
	}
	fmt.Fprintf(w, `{"model":%q,"created_at":"2026-11-23T18:00:00Z","message":{"role":"assistant","content":""},%s}`+"\n", model, final)
}

func newClient(t *testing.T, url string, cfg ollama.Config) *ollama.Client {
	t.Helper()
	cfg.BaseURL = url
	if cfg.Model == "" {
		cfg.Model = "qwen2.5-coder:7b"
	}
	c, err := ollama.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConformance(t *testing.T) {
	llmtest.RunModel(t, func(t *testing.T, s llmtest.Script) llm.Model {
		srv := httptest.NewServer(&fakeOllama{script: s})
		t.Cleanup(srv.Close)
		return newClient(t, srv.URL, ollama.Config{})
	})
}

func TestRequestOnTheWire(t *testing.T) {
	f := &fakeOllama{script: llmtest.Script{Text: "ok"}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newClient(t, srv.URL, ollama.Config{KeepAlive: 30 * time.Minute, Options: map[string]any{"num_ctx": 8192}})
	_, err := c.Chat(context.Background(), llm.Request{
		MaxTokens: 64,
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "sys"},
			{Role: llm.RoleUser, Content: "list /tmp"},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{Name: "ls", Arguments: map[string]any{"dir": "/tmp"}}}},
			{Role: llm.RoleTool, ToolName: "ls", Content: "a b"},
		},
		Tools: []llm.Tool{{Name: "ls", Description: "list a directory", Parameters: map[string]any{
			"type": "object", "properties": map[string]any{"dir": map[string]any{"type": "string", "description": "path"}}, "required": []any{"dir"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	b := f.requests[0]
	if b["keep_alive"] != "30m0s" || b["stream"] != false || b["model"] != "qwen2.5-coder:7b" {
		t.Fatalf("body = %v", b)
	}
	opts := b["options"].(map[string]any)
	if opts["num_ctx"] != float64(8192) || opts["num_predict"] != float64(64) {
		t.Fatalf("options = %v", opts)
	}
	msgs := b["messages"].([]any)
	if len(msgs) != 4 || msgs[3].(map[string]any)["tool_name"] != "ls" || msgs[3].(map[string]any)["role"] != "tool" {
		t.Fatalf("messages = %v", msgs)
	}
	tc := msgs[2].(map[string]any)["tool_calls"].([]any)[0].(map[string]any)["function"].(map[string]any)
	if tc["name"] != "ls" || tc["arguments"].(map[string]any)["dir"] != "/tmp" {
		t.Fatalf("tool call = %v", tc)
	}
	tool := b["tools"].([]any)[0].(map[string]any)
	fn := tool["function"].(map[string]any)
	if tool["type"] != "function" || fn["name"] != "ls" || fn["parameters"].(map[string]any)["required"].([]any)[0] != "dir" {
		t.Fatalf("tools = %v", tool)
	}
}

func TestVRAMRuntime(t *testing.T) {
	f := &fakeOllama{script: llmtest.Script{ContextLength: 131072}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	c := newClient(t, srv.URL, ollama.Config{})
	ctx := context.Background()
	if err := c.Load(ctx, "qwen2.5vl:7b"); err != nil {
		t.Fatal(err)
	}
	if f.requests[0]["keep_alive"] != "5m0s" || f.paths[0] != "/api/generate" {
		t.Fatalf("load request = %v %v", f.paths[0], f.requests[0])
	}
	got, err := c.Resident(ctx)
	if err != nil || len(got) != 1 || got[0] != "qwen2.5vl:7b" {
		t.Fatalf("Resident = %v, %v", got, err)
	}
	if err := c.Unload(ctx, "qwen2.5vl:7b"); err != nil {
		t.Fatal(err)
	}
	if f.requests[2]["keep_alive"] != "0s" {
		t.Fatalf("unload keep_alive = %v", f.requests[2]["keep_alive"])
	}
	if got, _ := c.Resident(ctx); len(got) != 0 {
		t.Fatalf("still resident: %v", got)
	}
	n, err := c.ContextLength(ctx, "qwen2.5vl:7b")
	if err != nil || n != 131072 {
		t.Fatalf("ContextLength = %d, %v", n, err)
	}
	_, _ = c.ContextLength(ctx, "qwen2.5vl:7b")
	shows := 0
	for _, p := range f.paths {
		if p == "/api/show" {
			shows++
		}
	}
	if shows != 1 {
		t.Fatalf("/api/show called %d times, want 1 (cached)", shows)
	}
	if err := c.Load(ctx, ""); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("Load(\"\") = %v", err)
	}
}

func TestErrorMapping(t *testing.T) {
	ctx := context.Background()
	t.Run("model not found", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintln(w, `{"error":"model 'nope' not found"}`)
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL, ollama.Config{Model: "nope"}).Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		var ae *llm.APIError
		if !errors.Is(err, talos.ErrLocalModelLoad) || !errors.As(err, &ae) || ae.StatusCode != 404 || !strings.Contains(err.Error(), "ollama pull nope") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("out of memory mid-stream", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, `{"model":"m","created_at":"2026-11-23T18:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}`)
			fmt.Fprintln(w, `{"error":"model requires more system memory (9.1 GiB) than is available (4.0 GiB)"}`)
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL, ollama.Config{}).Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		if !errors.Is(err, talos.ErrLocalModelLoad) || !strings.Contains(err.Error(), "more system memory") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		url := srv.URL
		srv.Close()
		_, err := newClient(t, url, ollama.Config{}).Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		if !errors.Is(err, talos.ErrLocalModelLoad) || !strings.Contains(err.Error(), "unreachable") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		_, err := newClient(t, srv.URL, ollama.Config{Timeout: 50 * time.Millisecond}).Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		if !errors.Is(err, talos.ErrLocalModelTime) {
			t.Fatalf("err = %v", err)
		}
		if llm.Classify(err).Kind.String() != "failure" {
			t.Fatal("a timeout must count as a failure")
		}
	})
	t.Run("truncated stream", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, `{"model":"m","created_at":"2026-11-23T18:00:00Z","message":{"role":"assistant","content":"Hel"},"done":false}`)
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL, ollama.Config{}).Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		if !errors.Is(err, talos.ErrModelBadResponse) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, `{"model":"m","message":{"content":5}}`)
		}))
		defer srv.Close()
		_, err := newClient(t, srv.URL, ollama.Config{}).Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
		if err == nil {
			t.Fatal("garbage accepted")
		}
	})
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []ollama.Config{{BaseURL: "ftp://x"}, {BaseURL: "::"}, {Timeout: -1}} {
		if _, err := ollama.New(cfg); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("%+v: err = %v", cfg, err)
		}
	}
	c, _ := ollama.New(ollama.Config{})
	if _, err := c.Chat(context.Background(), llm.Request{}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("no model: %v", err)
	}
	if _, err := c.Info(context.Background()); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("Info without a model: %v", err)
	}
}

// FuzzChatStream feeds arbitrary NDJSON to the client: it must never panic,
// and a successful answer must have come with a done message.
func FuzzChatStream(f *testing.F) {
	f.Add("{\"message\":{\"role\":\"assistant\",\"content\":\"hi\"},\"done\":true,\"eval_count\":1}\n")
	f.Add("{\"message\":{\"content\":\"a\"}}\n{\"error\":\"boom\"}\n")
	f.Add("{\"message\":{\"tool_calls\":[{\"function\":{\"name\":\"x\",\"arguments\":{\"a\":[1,{}]}}}]},\"done\":true}\n")
	f.Add("not json\n")
	f.Add("{\"done\":true,\"prompt_eval_count\":-5}\n\n\n")
	f.Fuzz(func(t *testing.T, body string) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
		defer srv.Close()
		c := newClient(t, srv.URL, ollama.Config{})
		resp, err := c.Chat(context.Background(), llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}},
			Stream: func(string) error { return nil }})
		if err == nil && (resp == nil || !strings.Contains(body, "done")) {
			t.Fatalf("accepted an answer without a done message: %q", body)
		}
		if err != nil && talos.CodeOf(err) == "" {
			t.Fatalf("error without a talos code: %v", err)
		}
	})
}

// TestHasModel: Has follows /api/show (404 = not pulled), and the client is
// a vram.Catalog, so the VRAM mutex refuses an unknown model before it
// unloads the resident one.
func TestHasModel(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Model, Name string }
		_ = json.NewDecoder(r.Body).Decode(&body)
		switch body.Model + body.Name {
		case "qwen2.5-coder:7b":
			fmt.Fprint(w, `{"details":{"family":"qwen2"},"model_info":{"general.architecture":"qwen2","qwen2.context_length":32768}}`)
		case "boom":
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"error":"disk on fire"}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			fmt.Fprintf(w, `{"error":"model '%s' not found"}`, body.Model)
		}
	}))
	defer srv.Close()
	c := newClient(t, srv.URL, ollama.Config{})
	var _ vram.Catalog = c
	ctx := context.Background()
	if ok, err := c.Has(ctx, "qwen2.5-coder:7b"); !ok || err != nil {
		t.Fatalf("Has(pulled) = %v, %v", ok, err)
	}
	if ok, err := c.Has(ctx, "ghost"); ok || err != nil {
		t.Fatalf("Has(missing) = %v, %v; want false, nil", ok, err)
	}
	if _, err := c.Has(ctx, "boom"); err == nil {
		t.Fatal("Has on a server error returned no error")
	}
}
