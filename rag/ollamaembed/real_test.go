package ollamaembed_test

import (
	"context"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/rag/ollamaembed"
)

// Against the harness's real Ollama and its tiny random-weight model:
// embeddings come back, one per text, all of one dimension, not all zero,
// and the same text embeds the same way twice.
func TestRealOllamaEmbeddings(t *testing.T) {
	url, model := testenv.OllamaURL(t), testenv.OllamaModel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := ollamaembed.New(ollamaembed.Config{URL: url, Model: model})
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"The staging database password rotates every Tuesday.", "Lisbon is the user's favourite city.", "The staging database password rotates every Tuesday."}
	vs, err := e.Embed(ctx, texts)
	if err != nil {
		t.Fatalf("Embed: %v", err)
	}
	if len(vs) != len(texts) || len(vs[0]) == 0 {
		t.Fatalf("got %d vectors of %d dimensions for %d texts", len(vs), len(vs[0]), len(texts))
	}
	nonzero := false
	for i, v := range vs {
		if len(v) != len(vs[0]) {
			t.Errorf("vector %d has %d dimensions, the first %d", i, len(v), len(vs[0]))
		}
		for _, x := range v {
			nonzero = nonzero || x != 0
		}
	}
	if !nonzero {
		t.Error("every component is zero")
	}
	for j := range vs[0] {
		if vs[0][j] != vs[2][j] {
			t.Fatalf("the same text embedded differently at component %d: %v vs %v", j, vs[0][j], vs[2][j])
		}
	}
}
