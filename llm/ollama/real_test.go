package ollama_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/ollama"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// Against the harness's real Ollama server and its tiny model: chat,
// streaming, token counts, the context length, and the load/unload the
// VRAM mutex drives.
func TestRealOllamaServer(t *testing.T) {
	url, model := testenv.OllamaURL(t), testenv.OllamaModel(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := ollama.New(ollama.Config{BaseURL: url, Model: model, Options: map[string]any{"temperature": 0, "seed": 1}})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Has(ctx, model); err != nil || !ok {
		t.Fatalf("Has(%s) = %v, %v", model, ok, err)
	}
	req := llm.Request{Messages: []llm.Message{{Role: llm.RoleSystem, Content: "You are terse."}, {Role: llm.RoleUser, Content: "hello"}}, MaxTokens: 8}
	resp, err := c.Chat(ctx, req)
	if err != nil {
		t.Fatalf("Chat: %v", err)
	}
	if resp.Usage.PromptTokens == 0 || resp.Usage.CompletionTokens == 0 || resp.Usage.CompletionTokens > 8 {
		t.Errorf("usage %+v: want prompt tokens and at most 8 completion tokens", resp.Usage)
	}
	var deltas []string
	req.Stream = func(d string) error { deltas = append(deltas, d); return nil }
	sresp, err := c.Chat(ctx, req)
	if err != nil {
		t.Fatalf("streamed Chat: %v", err)
	}
	if len(deltas) == 0 || strings.Join(deltas, "") != sresp.Message.Content {
		t.Errorf("stream %q does not add up to the answer %q", deltas, sresp.Message.Content)
	}
	if n, err := c.ContextLength(ctx, model); err != nil || n != 2048 {
		t.Errorf("ContextLength = %d, %v; want the model's 2048", n, err)
	}
	if err := c.Load(ctx, model); err != nil {
		t.Fatalf("Load: %v", err)
	}
	// The name as asked for: an untagged model runs as NAME:latest.
	if res, err := c.Resident(ctx); err != nil || !slices.Contains(res, model) {
		t.Errorf("Resident after Load = %v, %v", res, err)
	}
	if err := c.Unload(ctx, model); err != nil {
		t.Fatalf("Unload: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := c.Resident(ctx)
		if err == nil && !slices.ContainsFunc(res, func(m string) bool { return strings.HasPrefix(m, model) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still resident 30 s after Unload: %v, %v", res, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	other, _ := ollama.New(ollama.Config{BaseURL: url, Model: "no-such-model"})
	if _, err := other.Chat(ctx, llm.Request{Messages: req.Messages, MaxTokens: 4}); err == nil {
		t.Error("a chat with a model the server does not have succeeded")
	}
}

// The VRAM mutex's runtime conformance suite against the real server: load,
// listed as resident under the name asked for, idempotent load, unload with
// keep_alive 0, gone; an unknown model refused.
func TestRealOllamaVRAMRuntime(t *testing.T) {
	url, model := testenv.OllamaURL(t), testenv.OllamaModel(t)
	vramtest.RunRuntime(t, func(t *testing.T) (vram.Runtime, string) {
		c, err := ollama.New(ollama.Config{BaseURL: url, Model: model})
		if err != nil {
			t.Fatal(err)
		}
		return c, model
	})
}
