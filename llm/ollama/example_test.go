package ollama_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/ollama"
)

func Example() {
	// A stand-in for `ollama serve`, streaming two NDJSON chunks.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, `{"model":"qwen2.5-coder:7b","message":{"role":"assistant","content":"Hello"},"done":false}`)
		fmt.Fprintln(w, `{"model":"qwen2.5-coder:7b","message":{"role":"assistant","content":"!"},"done":true,"done_reason":"stop","prompt_eval_count":9,"eval_count":2}`)
	}))
	defer srv.Close()

	c, err := ollama.New(ollama.Config{BaseURL: srv.URL, Model: "qwen2.5-coder:7b"})
	if err != nil {
		panic(err)
	}
	resp, err := c.Chat(context.Background(), llm.Request{
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "Say hello"}},
		Stream:   func(delta string) error { fmt.Printf("[%s]", delta); return nil },
	})
	if err != nil {
		panic(err)
	}
	fmt.Println()
	fmt.Println(resp.Message.Content, resp.Usage.Total(), "tokens")
	// Output:
	// [Hello][!]
	// Hello! 11 tokens
}
