package vram_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// Two models that do not fit together: leases share the resident one, and a
// request for the other swaps them once the last lease is released.
func Example() {
	gpu := vramtest.NewGPU(16 * vram.GiB)
	runtime := vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB, "vision": 7 * vram.GiB}, gpu, nil)
	m, err := vram.New(vram.Config{Models: map[string]vram.Model{
		"coder":  {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB},
		"vision": {MinFree: 9 * vram.GiB, Size: 7 * vram.GiB},
	}}, runtime, gpu, nil, nil)
	if err != nil {
		panic(err)
	}
	defer m.Close()
	ctx := context.Background()

	a, _ := m.Acquire(ctx, "coder")
	b, _ := m.Acquire(ctx, "coder") // shares the resident model
	s := m.Stats()
	fmt.Println(s.State, s.Model, s.Leases, "leases")

	a.Release()
	b.Release()
	v, err := m.Acquire(ctx, "vision") // unloads coder, loads vision
	if err != nil {
		panic(err)
	}
	defer v.Release()
	s = m.Stats()
	fmt.Println(s.State, s.Model, runtime.IsResident("coder"), runtime.IsResident("vision"))
	fmt.Printf("GPU used: %d GiB\n", gpu.Used()/vram.GiB)
	// Output:
	// ready coder 2 leases
	// ready vision false true
	// GPU used: 7 GiB
}

// The spec's error → action table for failed GPU readings.
func ExampleHandlingFor() {
	for _, k := range []vram.ProbeKind{vram.ProbeCommandNotFound, vram.ProbeTimeout, vram.ProbeParseError} {
		h := vram.HandlingFor(k)
		fmt.Println(k, h.Severity, h.Action)
	}
	// Output:
	// COMMAND_NOT_FOUND CRITICAL ENTER_CPU_MODE
	// TIMEOUT HIGH RETRY_WITH_BACKOFF
	// PARSE_ERROR MEDIUM USE_LAST_KNOWN
}
