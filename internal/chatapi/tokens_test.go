package chatapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/orchestrator"
)

// GET /api/v1/tokens answers the tracker's summary behind the operator's
// credentials; other methods and strangers are refused.
func TestTokensEndpoint(t *testing.T) {
	const pass = "Str0ng!Passw0rd#2026"
	tr, err := orchestrator.NewTracker(orchestrator.TrackerConfig{DailyLimit: 50000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tr.Count(context.Background(), "qwen2.5-coder:7b", llm.Usage{PromptTokens: 120, CompletionTokens: 30})
	h, err := chatapi.NewTokensHandler(chatapi.Config{User: "admin", Pass: pass}, tr)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(method string, auth bool) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+chatapi.TokensPath, nil)
		if auth {
			req.SetBasicAuth("admin", pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := do(http.MethodGet, false); code != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", code)
	}
	if code, body := do(http.MethodPost, true); code != http.StatusMethodNotAllowed || !strings.Contains(body, "use GET") {
		t.Fatalf("POST: %d %s", code, body)
	}
	code, body := do(http.MethodGet, true)
	var s orchestrator.TokenSummary
	if code != http.StatusOK || json.Unmarshal([]byte(body), &s) != nil {
		t.Fatalf("%d %s", code, body)
	}
	if s.Live.Models["qwen2.5-coder:7b"].TotalTokens != 150 || s.Live.DailyTotal != 150 || s.Live.DailyLimit != 50000 ||
		len(s.History) != orchestrator.TokenDays || s.History[0].Models["qwen2.5-coder:7b"] != 150 || s.Source != "memory" {
		t.Fatalf("summary %s", body)
	}
	for _, key := range []string{`"session":`, `"live":`, `"history":`, `"daily_total":150`, `"daily_limit":50000`, `"combined_total":150`, `"prompt_tokens":120`} {
		if !strings.Contains(body, key) {
			t.Errorf("body lacks %s: %s", key, body)
		}
	}
	if _, err := chatapi.NewTokensHandler(chatapi.Config{}, nil); err == nil {
		t.Error("a nil summarizer was accepted")
	}
}
