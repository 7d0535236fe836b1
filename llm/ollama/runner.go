package ollama

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/talos-ironclad/talos/proc"
	"github.com/talos-ironclad/talos/vram"
)

// IsRunner reports whether argv is an Ollama model runner: the subprocess
// "ollama runner ..." that holds a model's GPU memory (older releases ran a
// separate "ollama_llama_server" binary).
func IsRunner(argv []string) bool {
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

// Runner returns a vram.RunnerLocator for Ollama on this machine, for the
// VRAM mutex's kill ladder. Because the mutex keeps at most one model
// resident, the runner to kill is the only Ollama runner process; if there
// are several (another client loaded a model) it refuses to guess and the
// hung unload ends in Error.
func Runner() vram.RunnerLocator {
	return vram.RunnerFunc(func(ctx context.Context, model string) (int, error) {
		pids, err := proc.Find(IsRunner)
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
