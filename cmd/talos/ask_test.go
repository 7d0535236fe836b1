package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/redisstore"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/llm"
)

const askTestKey = "AIzaASK-TEST-KEY-should-never-print"

// askOllama answers /api/chat with text (NDJSON, one final message).
func askOllama(t *testing.T, text string, status int) string {
	t.Helper()
	return askOllamaSeen(t, text, status, nil)
}

// askSeen is what the fake Ollama received in its last /api/chat request.
type askSeen struct {
	mu     sync.Mutex
	model  string
	system string
}

func (s *askSeen) get() (model, system string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.model, s.system
}

// askOllamaSeen is askOllama that also records the model and system prompt
// of each request in seen (when not nil).
func askOllamaSeen(t *testing.T, text string, status int, seen *askSeen) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/chat" {
			http.NotFound(w, r)
			return
		}
		if seen != nil {
			var req struct {
				Model    string `json:"model"`
				Messages []struct {
					Role    string `json:"role"`
					Content string `json:"content"`
				} `json:"messages"`
			}
			_ = json.NewDecoder(r.Body).Decode(&req)
			seen.mu.Lock()
			seen.model = req.Model
			if len(req.Messages) > 0 && req.Messages[0].Role == "system" {
				seen.system = req.Messages[0].Content
			}
			seen.mu.Unlock()
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

// askEnv isolates a test from the developer's own configuration: TALOS_HOME
// is a fresh, un-initialised directory and every configuration variable is
// unset (then set from kv, pairs of name and value).
func askEnv(t *testing.T, kv ...string) string {
	t.Helper()
	home := t.TempDir()
	t.Setenv("TALOS_HOME", home)
	for _, name := range config.Variables() {
		t.Setenv(name, "") // restored after the test
		os.Unsetenv(name)
	}
	for i := 0; i+1 < len(kv); i += 2 {
		t.Setenv(kv[i], kv[i+1])
	}
	return home
}

// askHome writes config.yaml (mode 0644) and talos.env (mode 0600) into a
// new home, each only when its text is not empty.
func askHome(t *testing.T, yaml, env string) string {
	t.Helper()
	home := t.TempDir()
	dir := filepath.Join(home, config.ConfigDirName)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if yaml != "" {
		if err := os.WriteFile(filepath.Join(dir, config.ConfigFileName), []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if env != "" {
		if err := os.WriteFile(filepath.Join(dir, config.EnvFileName), []byte(env), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return home
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
	askEnv(t)
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
	askEnv(t, "GEMINI_API_KEY", askTestKey, "TALOS_GEMINI_ENABLED", "true")
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
	askEnv(t, "GEMINI_API_KEY", askTestKey, "TALOS_GEMINI_ENABLED", "true")
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
	askEnv(t, "GEMINI_API_KEY", askTestKey, "TALOS_GEMINI_ENABLED", "true")
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

// Each `talos ask` is a one-shot process. After a shared trip has
// run out, their probe successes add up in Redis, so two successful runs
// close the shared breaker (before, every run started half-open for as long
// as the record lived, and one failure re-opened it for an hour).
func TestAskOneShotRunsCloseSharedBreaker(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store, _ := redisstore.New(redisstore.Config{}, rdb)
	now := time.Now()
	if err := store.Save(context.Background(), askBreakerName, breaker.Record{State: breaker.Open, Until: now.Add(-time.Second), Step: 1, Updated: now.Add(-time.Hour)}); err != nil {
		t.Fatal(err)
	}
	askEnv(t, "GEMINI_API_KEY", askTestKey, "TALOS_GEMINI_ENABLED", "true")
	calls := 0
	gem := askGemini(t, "Here is the deep answer.", 0, &calls)
	for i, want := range []string{"breaker: half-open", "breaker: closed", "breaker: closed"} {
		out, err := runAsk(t, "--redis-url", "redis://"+mr.Addr()+"/0", "--ollama-url", askOllama(t, "[ESCALATE]", 0),
			"--gemini-url", gem, "hard question")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out, "Here is the deep answer.") || !strings.Contains(out, want) {
			t.Fatalf("run %d: want %q\n%s", i, want, out)
		}
	}
	if rec, _, err := store.Load(context.Background(), askBreakerName); err != nil || rec.State != breaker.Closed {
		t.Fatalf("stored record after two successful runs = %+v, %v; want closed", rec, err)
	}
}

func TestAskErrors(t *testing.T) {
	askEnv(t)
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
	out, err := runAsk(t, "--prompt-local", "/nonexistent/prompt.txt", "x")
	if !errors.As(err, &ee) || ee.code != 2 ||
		!strings.Contains(out, `TALOS_PROMPT_LOCAL: TALOS_PROMPT_LOCAL names a file that cannot be found (got: "/nonexistent/prompt.txt")`) ||
		!strings.Contains(out, "[flag]") {
		t.Fatalf("bad prompt file: %v\n%s", err, out)
	}
	if _, err := runAsk(t); err == nil {
		t.Fatal("no argument accepted")
	}
}

// Without --local-only, `talos ask` must see Gemini turned off unless
// TALOS_GEMINI_ENABLED=true, even with a key in the environment.
func TestAskGeminiNeedsEnabled(t *testing.T) {
	askEnv(t, "GEMINI_API_KEY", askTestKey)
	calls := 0
	out, err := runAsk(t, "--ollama-url", askOllama(t, "[ESCALATE]", 0),
		"--gemini-url", askGemini(t, "never", 0, &calls), "hard question")
	if err != nil {
		t.Fatal(err)
	}
	if calls != 0 || !strings.Contains(out, "breaker: disabled (TALOS_GEMINI_ENABLED is not true") {
		t.Fatalf("calls=%d\n%s", calls, out)
	}
}

// A key and TALOS_GEMINI_ENABLED in the talos.env of --home are used (where
// `talos init` tells operators to put them); the key is never printed.
func TestAskGeminiFromHomeEnvFile(t *testing.T) {
	askEnv(t)
	home := askHome(t, "", "TALOS_GEMINI_ENABLED=true\nGEMINI_API_KEY="+askTestKey+"\n")
	calls := 0
	out, err := runAsk(t, "--home", home, "--ollama-url", askOllama(t, "[ESCALATE]", 0),
		"--gemini-url", askGemini(t, "Answer from the cloud.", 0, &calls), "explain monads")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if calls != 1 || !strings.Contains(out, "Answer from the cloud.") || !strings.Contains(out, "breaker: closed") {
		t.Fatalf("calls=%d\n%s", calls, out)
	}
	if strings.Contains(out, askTestKey) {
		t.Fatalf("key printed:\n%s", out)
	}
}

// Gemini enabled without a key stops ask with exit 2 naming GEMINI_API_KEY
// and talos.env; --local-only needs no key.
func TestAskGeminiEnabledWithoutKey(t *testing.T) {
	home := askEnv(t, "TALOS_GEMINI_ENABLED", "true")
	url := askOllama(t, "Local answer.", 0)
	out, err := runAsk(t, "--ollama-url", url, "q")
	envFile := filepath.Join(home, "config", "talos.env")
	if exitCode(err) != 2 || !strings.Contains(out, "GEMINI_API_KEY: Required variable GEMINI_API_KEY is not set") ||
		!strings.Contains(err.Error(), "put GEMINI_API_KEY=<your key> in "+envFile) || !strings.Contains(err.Error(), "--local-only") {
		t.Fatalf("code %d: %v\n%s", exitCode(err), err, out)
	}
	out, err = runAsk(t, "--local-only", "--ollama-url", url, "q")
	if err != nil || !strings.Contains(out, "Local answer.") || !strings.Contains(out, "breaker: disabled") {
		t.Fatalf("--local-only: %v\n%s", err, out)
	}
}

// The local prompt and model named in config.yaml are what Ollama receives;
// ask's flags still win over the file.
func TestAskPromptAndModelFromConfigYAML(t *testing.T) {
	askEnv(t)
	prompt := "You are a terse test assistant. Answer in one line."
	home := askHome(t, "talos_prompt_local: prompts/local.txt\ntalos_ollama_model: llama3.2:3b\n", "")
	if err := os.MkdirAll(filepath.Join(home, "config", "prompts"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, "config", "prompts", "local.txt"), []byte(prompt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var seen askSeen
	url := askOllamaSeen(t, "ok", 0, &seen)
	if out, err := runAsk(t, "--home", home, "--ollama-url", url, "hi"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// The agent appends the canary that catches a leaked prompt.
	if model, system := seen.get(); model != "llama3.2:3b" || !strings.HasPrefix(system, prompt+"\n(internal marker tlc-") {
		t.Fatalf("Ollama got model %q, system prompt %q", model, system)
	}

	flagPrompt := filepath.Join(t.TempDir(), "flag.txt")
	if err := os.WriteFile(flagPrompt, []byte("Flag prompt."), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runAsk(t, "--home", home, "--ollama-url", url, "--model", "qwen2.5-coder:1.5b", "--prompt-local", flagPrompt, "hi"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if model, system := seen.get(); model != "qwen2.5-coder:1.5b" || !strings.HasPrefix(system, "Flag prompt.\n") {
		t.Fatalf("flags must win: model %q, system prompt %q", model, system)
	}
}

// A prompt file over its token budget stops ask with exit 2 and the
// budget error naming the file.
func TestAskPromptOverBudget(t *testing.T) {
	askEnv(t)
	home := askHome(t, "talos_prompt_escalation: big.txt\n", "")
	big := filepath.Join(home, "config", "big.txt")
	if err := os.WriteFile(big, []byte(strings.Repeat("y", 4*llm.SystemPromptTokenBudget+4)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runAsk(t, "--home", home, "--ollama-url", askOllama(t, "never", 0), "q")
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "TALOS_PROMPT_ESCALATION="+big) ||
		!strings.Contains(err.Error(), "PROMPT_BUDGET_EXCEEDED: target=escalation, estimated_tokens=501, budget=500") {
		t.Fatalf("code %d: %v\n%s", exitCode(err), err, out)
	}
}

// A home never initialised (no talos.env, so no BASIC_AUTH_PASS) and
// problems in settings ask does not read still let ask run local-only; a
// problem in a setting it reads stops it, printed like config validate.
func TestAskUninitialisedHome(t *testing.T) {
	askEnv(t)
	home := askHome(t, "trust_level: 9\nweb_port: 80\n", "")
	url := askOllama(t, "Still works.", 0)
	out, err := runAsk(t, "--home", home, "--ollama-url", url, "q")
	if err != nil || !strings.Contains(out, "Still works.") || !strings.Contains(out, "(local)") {
		t.Fatalf("%v\n%s", err, out)
	}
	home = askHome(t, "trust_level: 9\ntalos_ollama_model: \"bad model\"\n", "")
	out, err = runAsk(t, "--home", home, "--ollama-url", url, "q")
	if exitCode(err) != 2 || !strings.Contains(out, "TALOS_OLLAMA_MODEL: TALOS_OLLAMA_MODEL is not a valid Ollama model name") ||
		!strings.Contains(out, "[config.yaml:2]") || strings.Contains(out, "TRUST_LEVEL") || !strings.Contains(err.Error(), "1 problem(s)") {
		t.Fatalf("code %d: %v\n%s", exitCode(err), err, out)
	}
}
