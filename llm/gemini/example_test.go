package gemini_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/gemini"
)

// A 429 with RetryInfo becomes the breaker's wait: the breaker stays closed
// but rejects calls for the retry delay + 1 s.
func Example() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTooManyRequests)
		fmt.Fprint(w, `{"error":{"code":429,"message":"quota","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"37s"}]}}`)
	}))
	defer srv.Close()

	model, err := gemini.New(context.Background(), gemini.Config{APIKey: "test-key", BaseURL: srv.URL})
	if err != nil {
		panic(err)
	}
	br, _ := breaker.New(breaker.Config{Name: "gemini", Classifier: llm.Classify}, nil)
	_, err = breaker.Execute(context.Background(), br, func(ctx context.Context) (*llm.Response, error) {
		return model.Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	})
	fmt.Println(errors.Is(err, talos.ErrGeminiRateLimit), br.State(), br.Remaining() > 37e9)
	// Output: true closed true
}
