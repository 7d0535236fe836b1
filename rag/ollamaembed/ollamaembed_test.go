package ollamaembed_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ollamaembed"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

// fakeOllama answers /api/embed with a vector of dim values per input whose
// first value is the input's length.
func fakeOllama(t *testing.T, dim int, calls *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/embed" || r.Method != http.MethodPost {
			http.Error(w, "not found", 404)
			return
		}
		calls.Add(1)
		var req struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if req.Model != "nomic" {
			http.Error(w, `{"error":"model not found"}`, 404)
			return
		}
		embs := make([][]float32, len(req.Input))
		for i, s := range req.Input {
			embs[i] = make([]float32, dim)
			embs[i][0] = float32(len(s))
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"model": req.Model, "embeddings": embs})
	}))
}

func TestEmbedBatches(t *testing.T) {
	var calls atomic.Int32
	srv := fakeOllama(t, 4, &calls)
	defer srv.Close()
	e, err := ollamaembed.New(ollamaembed.Config{URL: srv.URL, Model: "nomic", Dimension: 4, Batch: 2})
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.Embed(context.Background(), []string{"a", "bb", "ccc"})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 3 || out[0][0] != 1 || out[1][0] != 2 || out[2][0] != 3 {
		t.Fatalf("embeddings out of order: %v", out)
	}
	if calls.Load() != 2 {
		t.Fatalf("3 texts in batches of 2 took %d calls", calls.Load())
	}
	if e.Name() != "ollama/nomic" {
		t.Fatal(e.Name())
	}
}

func TestDimensionChecks(t *testing.T) {
	var calls atomic.Int32
	srv := fakeOllama(t, 4, &calls)
	defer srv.Close()
	e, _ := ollamaembed.New(ollamaembed.Config{URL: srv.URL, Model: "nomic", Dimension: 8})
	if _, err := e.Embed(context.Background(), []string{"x"}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("4 values with dimension 8 configured = %v, want T010", err)
	}
	// Unconfigured dimension: CheckDimension probes it against the store.
	probe, _ := ollamaembed.New(ollamaembed.Config{URL: srv.URL, Model: "nomic"})
	if err := rag.CheckDimension(context.Background(), ragtest.NewMemoryStore(4), probe); err != nil {
		t.Fatalf("matching dimension: %v", err)
	}
	err := rag.CheckDimension(context.Background(), ragtest.NewMemoryStore(384), probe)
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("4 vs 384 = %v, want T010", err)
	}
}

func TestErrors(t *testing.T) {
	var calls atomic.Int32
	srv := fakeOllama(t, 4, &calls)
	defer srv.Close()
	e, _ := ollamaembed.New(ollamaembed.Config{URL: srv.URL, Model: "missing"})
	if _, err := e.Embed(context.Background(), []string{"x"}); !errors.Is(err, talos.ErrLocalModelLoad) {
		t.Fatalf("unknown model = %v, want T203", err)
	}
	if _, err := ollamaembed.New(ollamaembed.Config{URL: "ftp://x"}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("bad URL = %v", err)
	}
}

// The retriever takes its threshold from the embedder: the spec's 0.7.
func TestSimilarityThresholdIsTheSpecs(t *testing.T) {
	var e rag.ThresholdEmbedder = &ollamaembed.Embedder{}
	if got := rag.ThresholdFor(e); got != rag.DefaultThreshold || ollamaembed.DefaultThreshold != rag.DefaultThreshold {
		t.Fatalf("threshold %v, want the spec's %v", got, rag.DefaultThreshold)
	}
}
