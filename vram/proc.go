package vram

import (
	"context"
	"syscall"
)

// Processes is how the kill ladder signals and inspects processes. OSProcesses
// is the real implementation; tests use a fake.
type Processes interface {
	// Signal sends sig to pid. A process that no longer exists gives an
	// error satisfying errors.Is(err, syscall.ESRCH).
	Signal(pid int, sig syscall.Signal) error
	// Inspect returns the process's state. A missing process is ProcGone
	// with a nil error.
	Inspect(pid int) (ProcInfo, error)
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
