package vramtest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/vram"
)

// RunRuntime is the conformance suite of vram.Runtime. newRuntime returns a
// fresh runtime with nothing resident and the name of one model it can load.
// The suite loads it, checks Resident, unloads it and checks it is gone.
func RunRuntime(t *testing.T, newRuntime func(t *testing.T) (rt vram.Runtime, model string)) {
	t.Helper()
	t.Run("LoadResidentUnload", func(t *testing.T) {
		rt, model := newRuntime(t)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := rt.Load(ctx, model); err != nil {
			t.Fatalf("Load(%q): %v", model, err)
		}
		list, err := rt.Resident(ctx)
		if err != nil {
			t.Fatalf("Resident: %v", err)
		}
		if !slices.Contains(list, model) {
			t.Fatalf("Resident() = %v after Load(%q), want it listed", list, model)
		}
		if err := rt.Load(ctx, model); err != nil {
			t.Fatalf("second Load(%q) of a resident model: %v (want idempotent)", model, err)
		}
		if err := rt.Unload(ctx, model); err != nil {
			t.Fatalf("Unload(%q): %v", model, err)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			list, err = rt.Resident(ctx)
			if err != nil {
				t.Fatalf("Resident: %v", err)
			}
			if !slices.Contains(list, model) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Resident() = %v 30 s after Unload(%q), want it gone", list, model)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	t.Run("UnknownModel", func(t *testing.T) {
		rt, _ := newRuntime(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		const bogus = "vramtest-no-such-model:0b"
		if err := rt.Load(ctx, bogus); err == nil {
			t.Fatalf("Load(%q) = nil, want an error for a model the runtime does not have", bogus)
		}
		list, err := rt.Resident(ctx)
		if err != nil {
			t.Fatalf("Resident: %v", err)
		}
		if slices.Contains(list, bogus) {
			t.Fatalf("Resident() = %v lists the unknown model", list)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		rt, model := newRuntime(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := rt.Load(ctx, model); err == nil {
			t.Fatalf("Load with a cancelled context = nil, want an error")
		}
	})
}

// RunGPU is the conformance suite of vram.GPU. newGPU returns a reader of a
// GPU that exists (or a fake of one).
func RunGPU(t *testing.T, newGPU func(t *testing.T) vram.GPU) {
	t.Helper()
	t.Run("Reading", func(t *testing.T) {
		g := newGPU(t)
		r, err := g.Memory(context.Background())
		if err != nil {
			t.Fatalf("Memory: %v", err)
		}
		if r.Total == 0 || r.Used > r.Total {
			t.Fatalf("Memory() = used %d total %d, want 0 <= used <= total, total > 0", r.Used, r.Total)
		}
		if r.Stale {
			t.Fatalf("a successful reading is marked Stale")
		}
		if r.Source == "" {
			t.Fatalf("Reading.Source is empty")
		}
		if r.Free() != r.Total-r.Used {
			t.Fatalf("Free() = %d, want %d", r.Free(), r.Total-r.Used)
		}
	})
	t.Run("CancelledContext", func(t *testing.T) {
		g := newGPU(t)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err := g.Memory(ctx)
			// A reader may answer from memory (NVML) or fail; a failure
			// must be classified.
			if err != nil {
				var pe *vram.ProbeError
				if !errors.As(err, &pe) {
					t.Errorf("Memory with a cancelled context: %v is not a *vram.ProbeError", err)
				}
			}
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("Memory ignored a cancelled context for 10 s")
		}
	})
}
