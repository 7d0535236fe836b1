package geminiembed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/talos-ironclad/talos/rag/geminiembed"
)

func ExampleNew() {
	// A stand-in for the Gemini API's batchEmbedContents.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"embeddings": []map[string]any{{"values": []float32{0.6, 0.8}}}})
	}))
	defer srv.Close()
	ctx := context.Background()
	e, _ := geminiembed.New(ctx, geminiembed.Config{APIKey: "test-key", Dimension: 2, BaseURL: srv.URL})
	v, err := e.Embed(ctx, []string{"hello"})
	fmt.Println(e.Name(), v, err)
	// Output: gemini/gemini-embedding-001-2 [[0.6 0.8]] <nil>
}
