package orchestrator

import (
	"context"

	"github.com/talos-ironclad/talos/vram"
)

// mutexVRAM adapts a *vram.Mutex that may not exist yet.
type mutexVRAM struct{ get func() *vram.Mutex }

// FromMutex adapts a VRAM mutex to VRAM. get is called on every Acquire, so
// a mutex built after the orchestrator (the daemon builds it at boot, when
// it finds a GPU) is picked up; get returning nil means no arbitration (no
// GPU: the model runs on the CPU).
func FromMutex(get func() *vram.Mutex) VRAM { return mutexVRAM{get: get} }

// Acquire takes a lease on model and returns its Release.
func (m mutexVRAM) Acquire(ctx context.Context, model string) (func(), error) {
	mu := m.get()
	if mu == nil {
		return nil, nil
	}
	l, err := mu.Acquire(ctx, model)
	if err != nil {
		return nil, err
	}
	return l.Release, nil
}
