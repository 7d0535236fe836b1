package vram

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
)

// ParseCmdline splits the contents of /proc/<pid>/cmdline (arguments
// separated and terminated by NUL bytes) into argv.
func ParseCmdline(data []byte) []string {
	s := strings.TrimRight(string(data), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}

// IsOllamaRunner reports whether argv is an Ollama model runner: the
// subprocess "ollama runner ..." that holds a model's GPU memory (older
// releases ran a separate "ollama_llama_server" binary).
func IsOllamaRunner(argv []string) bool {
	if len(argv) == 0 {
		return false
	}
	switch filepath.Base(argv[0]) {
	case "ollama":
		return len(argv) > 1 && argv[1] == "runner"
	case "ollama_llama_server":
		return true
	}
	return false
}

// OllamaRunner returns a RunnerLocator for Ollama on this machine. Because
// the mutex keeps at most one model resident, the runner to kill is the only
// Ollama runner process; if there are several (another client loaded a
// model) it refuses to guess and the hung unload ends in Error.
func OllamaRunner() RunnerLocator {
	return RunnerFunc(func(ctx context.Context, model string) (int, error) {
		pids, err := FindProcesses(IsOllamaRunner)
		if err != nil {
			return 0, err
		}
		switch len(pids) {
		case 0:
			return 0, fmt.Errorf("no Ollama runner process found for model %q", model)
		case 1:
			return pids[0], nil
		}
		return 0, fmt.Errorf("%d Ollama runner processes (pids %v): cannot tell which one holds model %q; set OLLAMA_MAX_LOADED_MODELS=1", len(pids), pids, model)
	})
}
