package vram_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// TestSwapUsesMeasuredFootprint: with only MinFree configured (as
// TALOS_VRAM_MODELS gives it), a model that really takes less than its
// MinFree is unloaded against what it was measured to take, so the swap does
// not wait for the 29 s hang threshold.
func TestSwapUsesMeasuredFootprint(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gpu := vramtest.NewGPU(24 * vram.GiB)
		gpu.SetUsed(2 * vram.GiB) // the desktop
		rt := vramtest.NewRuntime(map[string]uint64{"coder": 4608 * vram.MiB, "vision": 6 * vram.GiB}, gpu, nil)
		m, err := vram.New(vram.Config{Models: map[string]vram.Model{"coder": {MinFree: 7 * vram.GiB}, "vision": {MinFree: 9 * vram.GiB}}},
			rt, gpu, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		l, err := m.Acquire(context.Background(), "coder")
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
		start := time.Now()
		l, err = m.Acquire(context.Background(), "vision")
		if err != nil {
			t.Fatalf("swap to vision: %v", err)
		}
		l.Release()
		if took := time.Since(start); took >= vram.DefaultUnloadHang {
			t.Fatalf("swap took %v: it waited for the hang threshold instead of seeing the unload", took)
		}
		if s := m.Stats(); s.Model != "vision" || s.State != vram.Ready {
			t.Fatalf("after the swap: %v %q", s.State, s.Model)
		}
	})
}

// TestHungUnloadOfAnUnlistedModelKillsNothing: when the runtime no longer
// lists the model but used VRAM never drops, the only runner process left
// may hold another client's model: it must not be signalled.
func TestHungUnloadOfAnUnlistedModelKillsNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gpu := vramtest.NewGPU(24 * vram.GiB)
		gpu.SetUsed(vram.GiB)
		procs := vramtest.NewProcesses()
		rt := vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB, "vision": 7 * vram.GiB}, gpu, procs)
		other := procs.Spawn(vramtest.Proc{Behavior: vramtest.ExitOnTerm}) // someone else's embedding runner
		locator := vram.RunnerFunc(func(context.Context, string) (int, error) { return other, nil })
		m, err := vram.New(vram.Config{Models: map[string]vram.Model{"coder": {MinFree: 6 * vram.GiB, Size: 5 * vram.GiB}, "vision": {MinFree: 7 * vram.GiB}}},
			rt, gpu, locator, procs)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		l, err := m.Acquire(context.Background(), "coder")
		if err != nil {
			t.Fatal(err)
		}
		l.Release()
		rt.OnUnload = func(ctx context.Context, model string) error {
			rt.Evict(model)
			gpu.SetUsed(6 * vram.GiB) // the memory never comes back
			return nil
		}
		l, err = m.Acquire(context.Background(), "vision")
		if err == nil {
			l.Release()
		}
		if sigs := procs.Signals(other); len(sigs) != 0 {
			t.Fatalf("another client's runner got %v", sigs)
		}
		if s := m.Stats(); s.State == vram.Error {
			t.Fatalf("state %v after an unload the runtime confirmed", s.State)
		}
	})
}

// TestParseErrorUsesRecentLastKnownReading: a parse error of the GPU reader
// lets a load go ahead on the last known reading when it is recent
// (USE_LAST_KNOWN), and refuses it when the reading is too old.
func TestParseErrorUsesRecentLastKnownReading(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		raw := vramtest.NewGPU(24 * vram.GiB)
		raw.SetUsed(vram.GiB)
		gpu := vram.Fallback(raw)
		rt := vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB, "vision": 7 * vram.GiB}, raw, nil)
		m, err := vram.New(vram.Config{Models: map[string]vram.Model{"coder": {MinFree: 7 * vram.GiB}, "vision": {MinFree: 9 * vram.GiB}}},
			rt, gpu, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		if _, err := gpu.Memory(context.Background()); err != nil { // a good reading to remember
			t.Fatal(err)
		}
		raw.Fail(&vram.ProbeError{Kind: vram.ProbeParseError, Source: "fake"})
		time.Sleep(10 * time.Second)
		l, err := m.Acquire(context.Background(), "coder")
		if err != nil {
			t.Fatalf("load after a parse error with a 10 s old reading: %v", err)
		}
		l.Release()
		time.Sleep(vram.MaxStaleReading + time.Second)
		_, err = m.Acquire(context.Background(), "vision")
		wantCode(t, err, talos.CodeGPUQuery) // not decided on a reading older than MaxStaleReading
	})
}
