package vramtest

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/vram"
)

// Spawner starts a process with the given behavior as a child of the
// Processes under test and returns its PID. Unkillable is never asked for.
type Spawner func(t *testing.T, b Behavior) int

// RunProcesses is the conformance suite of vram.Processes: the fake process
// table and vram.OSProcesses() must agree on signals, states and reaping.
func RunProcesses(t *testing.T, newProcs func(t *testing.T) (vram.Processes, Spawner)) {
	t.Helper()
	// waitState polls until pid reaches want (or gone counts as want).
	waitState := func(t *testing.T, ps vram.Processes, pid int, want ...vram.ProcState) vram.ProcState {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			info, err := ps.Inspect(pid)
			if err != nil {
				t.Fatalf("Inspect(%d): %v", pid, err)
			}
			for _, w := range want {
				if info.ProcState() == w {
					return w
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("pid %d is %v after 5 s, want one of %v", pid, info.ProcState(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Run("ExitOnTermThenReap", func(t *testing.T) {
		ps, spawn := newProcs(t)
		pid := spawn(t, ExitOnTerm)
		info, err := ps.Inspect(pid)
		if err != nil || info.ProcState() != vram.ProcRunning || info.PID != pid {
			t.Fatalf("new process: %+v %v, want running", info, err)
		}
		if err := ps.Signal(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		waitState(t, ps, pid, vram.ProcZombie)
		ok, err := ps.Reap(pid)
		if !ok || err != nil {
			t.Fatalf("Reap of our zombie child = %v, %v", ok, err)
		}
		waitState(t, ps, pid, vram.ProcGone)
		if err := ps.Signal(pid, syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("signal to a reaped process: %v, want ESRCH", err)
		}
		if ok, _ := ps.Reap(pid); ok {
			t.Fatal("reaped the same process twice")
		}
	})
	t.Run("IgnoreTermNeedsKill", func(t *testing.T) {
		ps, spawn := newProcs(t)
		pid := spawn(t, IgnoreTerm)
		if err := ps.Signal(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
		if info, _ := ps.Inspect(pid); info.ProcState() != vram.ProcRunning {
			t.Fatalf("a SIGTERM-ignoring process is %v, want running", info.ProcState())
		}
		if err := ps.Signal(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		waitState(t, ps, pid, vram.ProcZombie)
		for {
			ok, err := ps.Reap(pid)
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				break
			}
			time.Sleep(10 * time.Millisecond) // a multi-threaded zombie
		}
		waitState(t, ps, pid, vram.ProcGone)
	})
	t.Run("UnknownPID", func(t *testing.T) {
		ps, _ := newProcs(t)
		const pid = 1 << 30
		if info, err := ps.Inspect(pid); err != nil || info.ProcState() != vram.ProcGone {
			t.Fatalf("Inspect(unknown) = %+v, %v; want gone", info, err)
		}
		if err := ps.Signal(pid, syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("Signal(unknown) = %v, want ESRCH", err)
		}
		if ok, err := ps.Reap(pid); ok || err != nil {
			t.Fatalf("Reap(unknown) = %v, %v", ok, err)
		}
	})
}
