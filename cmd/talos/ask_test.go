package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/redisstore"
)

const askTestKey = "AIzaASK-TEST-KEY-should-never-print"

// askOllama answers /api/chat with text (NDJSON, one final message).
func askOllama(t *testing.T, text string, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/chat" {
			http.NotFound(w, r)
			return
		}
		if status != 0 {
			w.WriteHeader(status)
			fmt.Fprintln(w, `{"error":"model 'qwen2.5-coder:7b' not found"}`)
			return
		}
		b, _ := json.Marshal(text)
		fmt.Fprintf(w, `{"model":"qwen2.5-coder:7b","created_at":"2026-11-23T18:00:00Z","message":{"role":"assistant","content":%s},"done":true,"done_reason":"stop","prompt_eval_count":30,"eval_count":4}`+"\n", b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// askGemini answers generateContent with text, or fails with status.
func askGemini(t *testing.T, text string, status int, calls *int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*calls++
		if r.Header.Get("x-goog-api-key") != askTestKey {
			w.WriteHeader(401)
			return
		}
		if status != 0 {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":{"code":%d,"message":"The model is overloaded.","status":"UNAVAILABLE"}}`, status)
			return
		}
		b, _ := json.Marshal(text)
		fmt.Fprintf(w, `{"candidates":[{"content":{"role":"model","parts":[{"text":%s}]},"finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":200,"candidatesTokenCount":20,"totalTokenCount":220},"modelVersion":"gemini-2.5-flash"}`, b)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func runAsk(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(append([]string{"ask"}, args...))
	err := root.ExecuteContext(context.Background())
	return out.String() + errb.String(), err
}

func TestAskLocalOnly(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", "")
	t.Setenv("TALOS_REDIS_URL", "")
	out, err := runAsk(t, "--ollama-url", askOllama(t, "A goroutine is a lightweight thread.", 0), "what is a goroutine?")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"A goroutine is a lightweight thread.",
		"model:   qwen2.5-coder:7b (local)",
		"tokens:  30 prompt + 4 completion = 34",
		"breaker: disabled",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestAskEscalates(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", askTestKey)
	t.Setenv("TALOS_REDIS_URL", "")
	calls := 0
	out, err := runAsk(t, "--ollama-url", askOllama(t, "[ESCALATE]", 0),
		"--gemini-url", askGemini(t, "Here is the deep answer.", 0, &calls), "explain monads")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"Here is the deep answer.",
		"model:   gemini-2.5-flash (escalated: marker)",
		"tokens:  230 prompt + 24 completion = 254",
		"breaker: closed",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, askTestKey) || calls != 1 {
		t.Fatalf("key printed or wrong call count %d:\n%s", calls, out)
	}
}

func TestAskFallbackJSON(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", askTestKey)
	t.Setenv("TALOS_REDIS_URL", "")
	calls := 0
	out, err := runAsk(t, "--json", "--ollama-url", askOllama(t, "Roughly: yes. [ESCALATE]", 0),
		"--gemini-url", askGemini(t, "", 503, &calls), "is it?")
	if err != nil {
		t.Fatal(err)
	}
	var res askResult
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("%v in %s", err, out)
	}
	if res.Answer != "Roughly: yes." || !res.Fallback || res.Escalated || res.Model != "qwen2.5-coder:7b" ||
		res.Breaker != "closed" || !strings.Contains(res.EscalationError, "T200") || res.TotalTokens != 34 {
		t.Fatalf("result = %+v", res)
	}
}

// With a shared store holding an open breaker, ask does not call Gemini and
// reports the breaker open with its remaining cooldown.
func TestAskSharedOpenBreaker(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store, _ := redisstore.New(redisstore.Config{}, rdb)
	now := time.Now()
	if err := store.Save(context.Background(), askBreakerName, breaker.Record{State: breaker.Open, Until: now.Add(42 * time.Minute), Step: 1, Updated: now}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GEMINI_API_KEY", askTestKey)
	calls := 0
	out, err := runAsk(t, "--redis-url", "redis://"+mr.Addr()+"/0", "--ollama-url", askOllama(t, "[ESCALATE]", 0),
		"--gemini-url", askGemini(t, "never", 0, &calls), "hard question")
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 || !strings.Contains(out, "breaker: open, retry in 4") || !strings.Contains(out, "(local fallback: marker)") || !strings.Contains(out, "T205") {
		t.Fatalf("calls=%d\n%s", calls, out)
	}
}

func TestAskErrors(t *testing.T) {
	t.Setenv("GEMINI_API_KEY", "")
	t.Setenv("TALOS_REDIS_URL", "")
	_, err := runAsk(t, "--ollama-url", askOllama(t, "", 404), "hello")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "T203") {
		t.Fatalf("local failure: %v", err)
	}
	if _, err := runAsk(t, "  "); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("empty question: %v", err)
	}
	if _, err := runAsk(t, "--timeout", "0s", "x"); !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("bad timeout: %v", err)
	}
	if _, err := runAsk(t, "--prompt-local", "/nonexistent/prompt.txt", "x"); !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "T010") {
		t.Fatalf("bad prompt file: %v", err)
	}
	if _, err := runAsk(t); err == nil {
		t.Fatal("no argument accepted")
	}
	_ = io.Discard
}
