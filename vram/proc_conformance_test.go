package vram_test

import (
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

func TestFakeProcessesConformance(t *testing.T) {
	vramtest.RunProcesses(t, func(t *testing.T) (vram.Processes, vramtest.Spawner) {
		ps := vramtest.NewProcesses()
		return ps, func(t *testing.T, b vramtest.Behavior) int { return ps.Spawn(vramtest.Proc{Behavior: b, Child: true}) }
	})
}

func TestOSProcessesConformance(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	vramtest.RunProcesses(t, func(t *testing.T) (vram.Processes, vramtest.Spawner) {
		return vram.OSProcesses(), func(t *testing.T, b vramtest.Behavior) int {
			script := "exec sleep 30"
			if b == vramtest.IgnoreTerm {
				script = `trap "" TERM; exec sleep 30` // the ignored disposition survives exec
			}
			cmd := exec.Command("sh", "-c", script)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			t.Cleanup(func() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				var ws syscall.WaitStatus
				_, _ = syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
				_ = cmd.Process.Release()
			})
			// Wait until sh has exec'd sleep (the trap is installed by then).
			for i := 0; i < 500; i++ {
				info, err := vram.OSProcesses().Inspect(pid)
				if err == nil && info.Comm == "sleep" {
					break
				}
				time.Sleep(time.Millisecond)
			}
			return pid
		}
	})
}
