package vram

import (
	"context"
	"syscall"

	"github.com/talos-ironclad/talos/proc"
)

// Processes is how the kill ladder signals and inspects processes: proc.OS()
// is the real one, and any proc.Processes satisfies it; tests use a fake such
// as vramtest.Processes.
type Processes interface {
	// Signal sends sig to pid. A process that no longer exists gives an
	// error satisfying errors.Is(err, syscall.ESRCH).
	Signal(pid int, sig syscall.Signal) error
	// Stat returns the process's state, or an error wrapping proc.ErrGone
	// when it does not exist.
	Stat(pid int) (proc.Stat, error)
	// Reap collects the exit status of pid if it is a zombie child of this
	// process. It reports false, nil when pid is not our child.
	Reap(pid int) (bool, error)
}

// RunnerLocator finds the process that holds a model's GPU memory (for
// Ollama, its runner subprocess). The ladder kills it when an unload hangs.
type RunnerLocator interface {
	RunnerPID(ctx context.Context, model string) (int, error)
}

// RunnerFunc adapts a function to RunnerLocator.
type RunnerFunc func(ctx context.Context, model string) (int, error)

// RunnerPID calls f.
func (f RunnerFunc) RunnerPID(ctx context.Context, model string) (int, error) { return f(ctx, model) }
