package ollamaembed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/talos-ironclad/talos/rag/ollamaembed"
)

func ExampleNew() {
	// A stand-in for `ollama serve` answering /api/embed.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"embeddings": [][]float32{{0.6, 0.8}}})
	}))
	defer srv.Close()
	e, _ := ollamaembed.New(ollamaembed.Config{URL: srv.URL, Model: "all-minilm", Dimension: 2})
	v, err := e.Embed(context.Background(), []string{"hello"})
	fmt.Println(e.Name(), v, err)
	// Output: ollama/all-minilm [[0.6 0.8]] <nil>
}
