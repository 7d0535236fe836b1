package vramtest_test

import (
	"context"
	"fmt"
	"syscall"

	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// The fakes are linked: a load raises the GPU's used memory and spawns a
// runner; killing the runner evicts the model and frees the memory.
func Example() {
	gpu := vramtest.NewGPU(24 * vram.GiB)
	procs := vramtest.NewProcesses()
	rt := vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB}, gpu, procs)
	rt.Runner = func(string) vramtest.Proc { return vramtest.Proc{Behavior: vramtest.IgnoreTerm} }

	ctx := context.Background()
	_ = rt.Load(ctx, "coder")
	pid, _ := rt.RunnerPID(ctx, "coder")
	fmt.Println(rt.IsResident("coder"), gpu.Used()/vram.GiB)

	_ = procs.Signal(pid, syscall.SIGTERM) // ignored
	fmt.Println(procs.Alive(pid))
	_ = procs.Signal(pid, syscall.SIGKILL)
	fmt.Println(procs.Alive(pid), rt.IsResident("coder"), gpu.Used()/vram.GiB)
	// Output:
	// true 5
	// true
	// false false 0
}
