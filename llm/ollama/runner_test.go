package ollama

import (
	"context"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/proc"
)

func TestIsRunner(t *testing.T) {
	for argv, want := range map[string]bool{
		"/usr/local/bin/ollama runner --model /x --port 1":             true,
		"ollama runner --ollama-engine --model /x":                     true,
		"/tmp/ollama1/runners/cuda_v12/ollama_llama_server --model /x": true,
		"ollama serve":           false,
		"ollama":                 false,
		"/usr/bin/python runner": false,
		"":                       false,
	} {
		if got := IsRunner(strings.Fields(argv)); got != want {
			t.Errorf("IsRunner(%q) = %v, want %v", argv, got, want)
		}
	}
}

// No Ollama runs on the test machine: the locator says so clearly.
func TestRunnerWithoutOllama(t *testing.T) {
	if got, _ := proc.Find(IsRunner); len(got) != 0 {
		t.Skipf("an Ollama runner runs here (pids %v)", got)
	}
	_, err := Runner().RunnerPID(context.Background(), "coder")
	if err == nil || !strings.Contains(err.Error(), "no Ollama runner") {
		t.Fatalf("Runner with no runner: %v", err)
	}
}

func FuzzIsRunner(f *testing.F) {
	f.Add([]byte("ollama\x00runner\x00"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		_ = IsRunner(proc.ParseCmdline(data))
	})
}
