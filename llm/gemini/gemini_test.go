package gemini_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // QuotaReset's cases need America/Los_Angeles

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/gemini"
	"github.com/talos-ironclad/talos/llm/llmtest"
)

const testKey = "AIzaTEST-not-a-real-key-0123456789"

// Ordinary answers carry safetyRatings with HARM_CATEGORY_* at NEGLIGIBLE:
// they must not be mistaken for blocks.
const negligible = `"safetyRatings":[{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"},{"category":"HARM_CATEGORY_HATE_SPEECH","probability":"NEGLIGIBLE"},{"category":"HARM_CATEGORY_SEXUALLY_EXPLICIT","probability":"NEGLIGIBLE"},{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"NEGLIGIBLE"}]`

// fakeGemini speaks the Gemini API's JSON: generateContent, the SSE stream of
// streamGenerateContent (alt=sse), and models.get.
type fakeGemini struct {
	script llmtest.Script
	// raw, if set, is written (with status) instead of a scripted answer.
	status int
	raw    string
	header http.Header

	mu     sync.Mutex
	bodies []map[string]any
	keys   []string
	paths  []string
}

func (f *fakeGemini) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(b, &body)
	f.mu.Lock()
	f.bodies = append(f.bodies, body)
	f.keys = append(f.keys, r.Header.Get("x-goog-api-key"))
	f.paths = append(f.paths, r.URL.Path+"?"+r.URL.RawQuery)
	f.mu.Unlock()
	for k, vs := range f.header {
		w.Header()[k] = vs
	}
	if f.raw != "" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.status)
		io.WriteString(w, f.raw)
		return
	}
	switch {
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1beta/models/"):
		fmt.Fprintf(w, `{"name":"models/gemini-2.5-flash","version":"001","displayName":"Gemini 2.5 Flash","inputTokenLimit":%d,"outputTokenLimit":65536}`, f.script.ContextLength)
	case strings.HasSuffix(r.URL.Path, ":generateContent"):
		fmt.Fprint(w, f.answer(f.script.Text, true))
	case strings.HasSuffix(r.URL.Path, ":streamGenerateContent"):
		w.Header().Set("Content-Type", "text/event-stream")
		if f.script.ToolCall != nil {
			fmt.Fprintf(w, "data: %s\r\n\r\n", f.answer("", true))
			return
		}
		pieces := strings.SplitAfter(f.script.Text, " ")
		for i, p := range pieces {
			fmt.Fprintf(w, "data: %s\r\n\r\n", f.answer(p, i == len(pieces)-1))
			w.(http.Flusher).Flush()
		}
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeGemini) answer(text string, last bool) string {
	part, _ := json.Marshal(map[string]any{"text": text})
	if f.script.ToolCall != nil {
		part, _ = json.Marshal(map[string]any{"functionCall": map[string]any{"name": f.script.ToolCall.Name, "args": f.script.ToolCall.Arguments}})
	}
	finish, usage := "", ""
	if last {
		finish = `,"finishReason":"STOP"`
		u := f.script.Usage
		usage = fmt.Sprintf(`,"usageMetadata":{"promptTokenCount":%d,"candidatesTokenCount":%d,"totalTokenCount":%d}`, u.PromptTokens, u.CompletionTokens, u.Total())
	}
	return fmt.Sprintf(`{"candidates":[{"content":{"role":"model","parts":[%s]}%s,"index":0,%s}]%s,"modelVersion":"gemini-2.5-flash","responseId":"abc"}`,
		part, finish, negligible, usage)
}

func newClient(t *testing.T, f *fakeGemini, log *slog.Logger) *gemini.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	c, err := gemini.New(context.Background(), gemini.Config{APIKey: testKey, BaseURL: srv.URL, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var hello = llm.Request{Messages: []llm.Message{{Role: llm.RoleSystem, Content: "sys"}, {Role: llm.RoleUser, Content: "my secret question"}}}

func TestConformance(t *testing.T) {
	llmtest.RunModel(t, func(t *testing.T, s llmtest.Script) llm.Model { return newClient(t, &fakeGemini{script: s}, nil) })
}

func TestRequestOnTheWire(t *testing.T) {
	f := &fakeGemini{script: llmtest.Script{Text: "ok"}}
	c := newClient(t, f, nil)
	_, err := c.Chat(context.Background(), llm.Request{
		MaxTokens: 100,
		Messages: []llm.Message{
			{Role: llm.RoleSystem, Content: "be Talos"},
			{Role: llm.RoleUser, Content: "list /tmp"},
			{Role: llm.RoleAssistant, ToolCalls: []llm.ToolCall{{Name: "ls", Arguments: map[string]any{"dir": "/tmp"}}}},
			{Role: llm.RoleTool, ToolName: "ls", Content: "a b"},
		},
		Tools: []llm.Tool{{Name: "ls", Description: "list", Parameters: map[string]any{"type": "object"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if f.keys[0] != testKey || !strings.HasPrefix(f.paths[0], "/v1beta/models/gemini-2.5-flash:generateContent") {
		t.Fatalf("key/path = %q %q", f.keys[0], f.paths[0])
	}
	b, _ := json.Marshal(f.bodies[0])
	s := string(b)
	for _, want := range []string{
		`"systemInstruction":{"parts":[{"text":"be Talos"}]`,
		`"maxOutputTokens":100`,
		`"functionCall":{"args":{"dir":"/tmp"},"name":"ls"}`,
		`"functionResponse":{"name":"ls","response":{"output":"a b"}}`,
		`"functionDeclarations":[{"description":"list","name":"ls","parametersJsonSchema":{"type":"object"}}]`,
	} {
		if !strings.Contains(s, want) {
			t.Errorf("request body lacks %s:\n%s", want, s)
		}
	}
}

// An ordinary answer whose safetyRatings are all
// NEGLIGIBLE is not blocked (checked by every conformance answer); a
// structured blockReason or finishReason SAFETY is, and the log holds the
// hash, never the prompt.
func TestSafetyBlocks(t *testing.T) {
	for name, body := range map[string]string{
		"prompt blocked": `{"promptFeedback":{"blockReason":"SAFETY","safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true},{"category":"HARM_CATEGORY_HARASSMENT","probability":"NEGLIGIBLE"}]},"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash"}`,
		"answer blocked": `{"candidates":[{"finishReason":"SAFETY","index":0,"safetyRatings":[{"category":"HARM_CATEGORY_DANGEROUS_CONTENT","probability":"HIGH","blocked":true}]}],"usageMetadata":{"promptTokenCount":8,"totalTokenCount":8},"modelVersion":"gemini-2.5-flash"}`,
		"prohibited":     `{"promptFeedback":{"blockReason":"PROHIBITED_CONTENT"},"modelVersion":"gemini-2.5-flash"}`,
	} {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logs, nil))
			for _, stream := range []bool{false, true} {
				logs.Reset()
				raw := body
				if stream {
					raw = "data: " + body + "\r\n\r\n"
				}
				c := newClient(t, &fakeGemini{status: 200, raw: raw}, log)
				req := hello
				if stream {
					req.Stream = func(string) error { t.Fatal("blocked text streamed"); return nil }
				}
				_, err := c.Chat(context.Background(), req)
				var sb *llm.SafetyBlock
				if !errors.Is(err, talos.ErrSafetyBlock) || !errors.As(err, &sb) {
					t.Fatalf("stream=%v: err = %v, want T206", stream, err)
				}
				if sb.PromptHash != llm.PromptHash(hello.Messages) || sb.Reason == "" {
					t.Fatalf("block = %+v", sb)
				}
				if strings.Contains(body, "DANGEROUS") && (len(sb.Categories) != 1 || sb.Categories[0] != "HARM_CATEGORY_DANGEROUS_CONTENT") {
					t.Fatalf("categories = %v", sb.Categories)
				}
				if v := llm.Classify(err); v.Kind != breaker.Success {
					t.Fatalf("a safety block classifies as %s: it must never trip the breaker", v.Kind)
				}
				out := logs.String()
				if !strings.Contains(out, "SAFETY_BLOCK_DETECTED") || !strings.Contains(out, sb.PromptHash) {
					t.Fatalf("log = %s", out)
				}
				if strings.Contains(out, "secret question") || strings.Contains(out, testKey) {
					t.Fatalf("log leaks the prompt or key: %s", out)
				}
			}
		})
	}
}

// Rate limits in the real 429 shape: RetryInfo → the breaker's
// delay; > 300 s trips; a Retry-After header (seconds or HTTP-date) is used
// when there is no RetryInfo.
func quotaBody(delay string, quotaID string) string {
	return fmt.Sprintf(`{"error":{"code":429,"message":"You exceeded your current quota, please check your plan and billing details.","status":"RESOURCE_EXHAUSTED","details":[`+
		`{"@type":"type.googleapis.com/google.rpc.QuotaFailure","violations":[{"quotaMetric":"generativelanguage.googleapis.com/generate_content_free_tier_requests","quotaId":%q,"quotaDimensions":{"model":"gemini-2.5-flash","location":"global"},"quotaValue":"10"}]},`+
		`{"@type":"type.googleapis.com/google.rpc.Help","links":[{"description":"Learn more about Gemini API quotas","url":"https://ai.google.dev/gemini-api/docs/rate-limits"}]},`+
		`{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":%q}]}}`, quotaID, delay)
}

func TestRateLimit(t *testing.T) {
	body := quotaBody
	perMin := "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
	for name, tc := range map[string]struct {
		f       *fakeGemini
		code    error
		verdict breaker.Verdict
	}{
		"RetryInfo 37s": {&fakeGemini{status: 429, raw: body("37s", perMin)}, talos.ErrGeminiRateLimit,
			breaker.Verdict{Kind: breaker.Ignore, Delay: 38 * time.Second}},
		"RetryInfo 301s": {&fakeGemini{status: 429, raw: body("301s", perMin)}, talos.ErrGeminiRateLimit,
			breaker.Verdict{Kind: breaker.Trip, Delay: 301 * time.Second}},
		"Retry-After header": {&fakeGemini{status: 429, header: http.Header{"Retry-After": {"120"}},
			raw: `{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`}, talos.ErrGeminiRateLimit,
			breaker.Verdict{Kind: breaker.Ignore, Delay: 121 * time.Second}},
		"no delay": {&fakeGemini{status: 429, raw: `{"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED"}}`}, talos.ErrGeminiRateLimit,
			breaker.Verdict{Kind: breaker.Failure, Delay: breaker.Backoff}},
		"503": {&fakeGemini{status: 503, raw: `{"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}`}, talos.ErrGeminiConnection,
			breaker.Verdict{Kind: breaker.Failure}},
		"bad key": {&fakeGemini{status: 400, raw: `{"error":{"code":400,"message":"API key not valid. Please pass a valid API key.","status":"INVALID_ARGUMENT","details":[{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"API_KEY_INVALID","domain":"googleapis.com"}]}}`}, talos.ErrSecretMissing,
			breaker.Verdict{Kind: breaker.Failure}},
	} {
		t.Run(name, func(t *testing.T) {
			for _, stream := range []bool{false, true} {
				c := newClient(t, tc.f, nil)
				req := hello
				if stream {
					req.Stream = func(string) error { return nil }
				}
				_, err := c.Chat(context.Background(), req)
				if !errors.Is(err, tc.code) {
					t.Fatalf("stream=%v: err = %v, want %v", stream, err, tc.code)
				}
				if got := llm.Classify(err); got != tc.verdict {
					t.Fatalf("stream=%v: verdict = %+v, want %+v", stream, got, tc.verdict)
				}
				if strings.Contains(err.Error(), testKey) {
					t.Fatal("error leaks the API key")
				}
			}
			if n := len(tc.f.bodies); n != 2 {
				t.Fatalf("server saw %d requests, want 2: the SDK must not retry on its own", n)
			}
		})
	}
}

// The daily-quota message says escalation is off until the quota resets,
// but Classify used to treat it like any 429 (a short retryDelay was
// waited out, then Gemini was called again all day). Now a daily quota trips
// the breaker until the reset (midnight Pacific), or for the server's delay
// if that is longer, and the message says so.
func TestDailyQuotaTripsUntilReset(t *testing.T) {
	const perDay = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
	for _, tc := range []struct {
		delay    string
		atLeast  time.Duration // the server's delay, when longer than the reset
		byServer bool
	}{
		{delay: "26s"},
		{delay: "100000s", atLeast: 100000 * time.Second, byServer: true},
	} {
		f := &fakeGemini{status: 429, raw: quotaBody(tc.delay, perDay)}
		c := newClient(t, f, nil)
		before := time.Now()
		_, err := c.Chat(context.Background(), hello)
		after := time.Now()
		if !errors.Is(err, talos.ErrGeminiQuota) {
			t.Fatalf("retryDelay %s: err = %v, want T202", tc.delay, err)
		}
		reset := gemini.QuotaReset(after)
		if !strings.Contains(err.Error(), "breaker opens") || !strings.Contains(err.Error(), reset.UTC().Format(time.RFC3339)) {
			t.Fatalf("message does not say the breaker opens until %s: %v", reset.UTC(), err)
		}
		v := llm.Classify(err)
		lo, hi := reset.Sub(after), reset.Sub(before)
		if tc.byServer {
			lo, hi = tc.atLeast, tc.atLeast
		}
		if v.Kind != breaker.Trip || v.Delay < lo || v.Delay > hi {
			t.Fatalf("retryDelay %s: verdict %+v, want trip for %s..%s", tc.delay, v, lo, hi)
		}
		// Through a breaker: open, and no call before the reset.
		b, _ := breaker.New(breaker.Config{Name: "gemini", Classifier: llm.Classify}, nil)
		tk, _ := b.Allow()
		tk.Done(err)
		if b.State() != breaker.Open || b.Remaining() < min(lo, breaker.DefaultOpenFor)-time.Minute {
			t.Fatalf("retryDelay %s: breaker %s for %s after a daily-quota 429", tc.delay, b.State(), b.Remaining())
		}
	}
}

func TestQuotaReset(t *testing.T) {
	for _, tc := range []struct{ now, want string }{
		{"2026-12-02T00:16:00Z", "2026-12-02T08:00:00Z"}, // PST: 16:16 on Dec 1
		{"2026-12-02T08:00:00Z", "2026-12-03T08:00:00Z"}, // exactly at the reset: the next one
		{"2026-07-01T06:59:59Z", "2026-07-01T07:00:00Z"}, // PDT
		{"2026-03-08T12:00:00Z", "2026-03-09T07:00:00Z"}, // the day summer time starts
		{"2026-11-01T12:00:00Z", "2026-11-02T08:00:00Z"}, // the day it ends
	} {
		now, _ := time.Parse(time.RFC3339, tc.now)
		if got := gemini.QuotaReset(now).UTC().Format(time.RFC3339); got != tc.want {
			t.Errorf("QuotaReset(%s) = %s, want %s", tc.now, got, tc.want)
		}
	}
}

func TestUnreachableAndEmpty(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	c, err := gemini.New(context.Background(), gemini.Config{APIKey: testKey, BaseURL: url})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Chat(context.Background(), hello); !errors.Is(err, talos.ErrGeminiConnection) {
		t.Fatalf("err = %v", err)
	}
	c = newClient(t, &fakeGemini{status: 200, raw: `{"modelVersion":"gemini-2.5-flash"}`}, nil)
	if _, err := c.Chat(context.Background(), hello); !errors.Is(err, talos.ErrModelBadResponse) {
		t.Fatalf("empty answer: err = %v", err)
	}
	if _, err := gemini.New(context.Background(), gemini.Config{}); !errors.Is(err, talos.ErrSecretMissing) {
		t.Fatalf("no key: err = %v", err)
	}
}

func TestRetryDelay(t *testing.T) {
	d, ok := gemini.RetryDelay([]map[string]any{{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"}})
	if !ok || d != 1500*time.Millisecond {
		t.Fatalf("%s %v", d, ok)
	}
	if _, ok := gemini.RetryDelay([]map[string]any{{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": 5}}); ok {
		t.Fatal("a number is not a protobuf duration")
	}
}

func FuzzRetryDelay(f *testing.F) {
	for _, s := range []string{"37s", "0s", "1.000000001s", "-3s", "s", "99999999999999s", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := gemini.RetryDelay([]map[string]any{{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": s}})
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("%q → %s %v", s, d, ok)
		}
	})
}
