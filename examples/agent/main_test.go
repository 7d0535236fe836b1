package main

import (
	"context"
	"strings"
	"testing"
)

// TestRun runs the walkthrough and checks what it prints: the memory was
// retrieved, the injected tool result was blocked, the local model
// answered without seeing the injection, and an injection from the user
// was refused before any model ran.
func TestRun(t *testing.T) {
	var out strings.Builder
	if err := run(context.Background(), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Errorf("output differs.\n got:\n%s\nwant:\n%s", got, want)
	}
}

const want = `memories: 1
tool weather: firewall block
answer (qwen2.5-coder:7b): I could not read the weather safely, but Lisbon is your favourite city.
the model saw the injection: false
second turn: blocked; model calls in all: 2
`
