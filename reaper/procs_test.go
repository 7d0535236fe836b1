package reaper_test

import (
	"bufio"
	"os/exec"
	"testing"

	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/reaper/reapertest"
)

func TestOSProcessesConformance(t *testing.T) {
	reapertest.RunProcesses(t, reaper.OSProcesses(), func(t *testing.T, ignoreTerm bool) int {
		script := "echo ready; exec sleep 30"
		if ignoreTerm {
			script = "trap '' TERM; echo ready; while :; do sleep 0.05; done"
		}
		cmd := exec.Command("sh", "-c", script)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
			t.Fatalf("child not ready: %v", err)
		}
		return cmd.Process.Pid
	})
}

func TestFakeProcsConformance(t *testing.T) {
	p := reapertest.NewProcs()
	next := 100
	reapertest.RunProcesses(t, p, func(t *testing.T, ignoreTerm bool) int {
		next++
		p.Add(next, "fake", 1, ignoreTerm)
		return next
	})
}
