package geminiembed_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag/geminiembed"
)

// fakeGemini speaks batchEmbedContents: one vector per request whose first
// value is the length of the request's text.
func fakeGemini(t *testing.T, calls *atomic.Int32, dimOverride int) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if !strings.HasSuffix(r.URL.Path, "models/test-embed:batchEmbedContents") {
			http.Error(w, `{"error":{"code":404,"message":"no such path `+r.URL.Path+`","status":"NOT_FOUND"}}`, 404)
			return
		}
		if r.Header.Get("x-goog-api-key") != "k" {
			http.Error(w, `{"error":{"code":401,"message":"bad key","status":"UNAUTHENTICATED"}}`, 401)
			return
		}
		var req struct {
			Requests []struct {
				Content struct {
					Parts []struct{ Text string } `json:"parts"`
				} `json:"content"`
				OutputDimensionality int `json:"outputDimensionality"`
			} `json:"requests"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		type emb struct {
			Values []float32 `json:"values"`
		}
		var out []emb
		for _, rq := range req.Requests {
			d := rq.OutputDimensionality
			if dimOverride > 0 {
				d = dimOverride
			}
			v := make([]float32, d)
			v[0] = float32(len(rq.Content.Parts[0].Text))
			out = append(out, emb{Values: v})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"embeddings": out})
	}))
}

func TestEmbed(t *testing.T) {
	var calls atomic.Int32
	srv := fakeGemini(t, &calls, 0)
	defer srv.Close()
	ctx := context.Background()
	e, err := geminiembed.New(ctx, geminiembed.Config{APIKey: "k", Model: "test-embed", Dimension: 16, BaseURL: srv.URL, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Embed(ctx, []string{"a", "bb", "ccc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || len(out[0]) != 16 || out[0][0] != 1 || out[2][0] != 3 {
		t.Fatalf("embeddings = %v", out)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls = %d, want 2 (batch 2)", calls.Load())
	}
}

func TestErrors(t *testing.T) {
	var calls atomic.Int32
	srv := fakeGemini(t, &calls, 5)
	defer srv.Close()
	ctx := context.Background()
	if _, err := geminiembed.New(ctx, geminiembed.Config{}); !errors.Is(err, talos.ErrSecretMissing) {
		t.Fatalf("no key = %v, want T006", err)
	}
	e, _ := geminiembed.New(ctx, geminiembed.Config{APIKey: "k", Model: "test-embed", Dimension: 16, BaseURL: srv.URL})
	if _, err := e.Embed(ctx, []string{"x"}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("5 values for dimension 16 = %v, want T010", err)
	}
	bad, _ := geminiembed.New(ctx, geminiembed.Config{APIKey: "wrong", Model: "test-embed", BaseURL: srv.URL})
	_, err := bad.Embed(ctx, []string{"x"})
	if !errors.Is(err, talos.ErrGeminiConnection) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("bad key = %v, want T200 without the key", err)
	}
}
