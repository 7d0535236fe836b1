package proctest

import (
	"bufio"
	"errors"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/proc"
)

// Spawner starts a live process that the Processes under test can signal,
// stat and reap, and returns its PID. With ignoreTerm the process survives
// SIGTERM; otherwise SIGTERM ends it. The process must be a child of the
// Processes (so that an exited one can be reaped) and lead its own process
// group. The Spawner cleans up what it started.
type Spawner func(t *testing.T, ignoreTerm bool) int

// Run is the conformance suite of proc.Processes. newProcs returns a fresh
// implementation and a Spawner of its processes for each subtest.
func Run(t *testing.T, newProcs func(t *testing.T) (proc.Processes, Spawner)) {
	t.Helper()
	t.Run("Stat", func(t *testing.T) {
		ps, spawn := newProcs(t)
		pid := spawn(t, false)
		st, err := ps.Stat(pid)
		if err != nil {
			t.Fatalf("Stat(%d): %v", pid, err)
		}
		if st.PID != pid || st.StartTime == 0 || st.Zombie() || st.Dead() || st.PGRP != pid {
			t.Errorf("Stat(%d) = %+v: want its PID, a start time, its own group, alive", pid, st)
		}
		for _, missing := range []int{1 << 30, 0, -1} {
			if _, err := ps.Stat(missing); !errors.Is(err, proc.ErrGone) {
				t.Errorf("Stat(%d) = %v, want ErrGone", missing, err)
			}
		}
	})
	t.Run("NeverBroadcasts", func(t *testing.T) {
		ps, _ := newProcs(t)
		// kill(0), kill(-1) and kill(-pgid<=1) would hit whole groups or
		// every process; with signal 0 nothing is sent even if an
		// implementation wrongly passed them through.
		for _, pid := range []int{0, -1, -42} {
			if err := ps.Signal(pid, 0); err == nil {
				t.Errorf("Signal(%d) succeeded: a non-positive PID must be refused", pid)
			}
		}
		for _, pgid := range []int{0, 1, -1} {
			if err := ps.SignalGroup(pgid, 0); err == nil {
				t.Errorf("SignalGroup(%d) succeeded: must be refused", pgid)
			}
		}
		for _, pid := range []int{0, -1} {
			if ok, err := ps.Reap(pid); ok || err != nil {
				t.Errorf("Reap(%d) = %v, %v: want false, nil (never reap any child)", pid, ok, err)
			}
		}
	})
	t.Run("TermThenReap", func(t *testing.T) {
		ps, spawn := newProcs(t)
		pid := spawn(t, false)
		if err := ps.Signal(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		collect(t, ps, pid)
		if err := ps.Signal(pid, syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
			t.Fatalf("signal to a reaped process: %v, want ESRCH", err)
		}
		if ok, _ := ps.Reap(pid); ok {
			t.Fatal("reaped the same process twice")
		}
	})
	t.Run("IgnoredTermThenKill", func(t *testing.T) {
		ps, spawn := newProcs(t)
		pid := spawn(t, true)
		if err := ps.Signal(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		// Only SIGKILL ends it; the SIGKILL must reach a process that
		// still exists (no ESRCH).
		if err := ps.Signal(pid, syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		collect(t, ps, pid)
	})
	t.Run("GroupSignal", func(t *testing.T) {
		ps, spawn := newProcs(t)
		pid := spawn(t, false)
		st, err := ps.Stat(pid)
		if err != nil {
			t.Fatal(err)
		}
		if err := ps.SignalGroup(st.PGRP, syscall.SIGTERM); err != nil {
			t.Fatalf("SignalGroup(%d, SIGTERM): %v", st.PGRP, err)
		}
		collect(t, ps, pid)
	})
	t.Run("UnknownPID", func(t *testing.T) {
		ps, _ := newProcs(t)
		const pid = 1 << 30
		if err := ps.Signal(pid, syscall.SIGTERM); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("Signal(unknown) = %v, want ESRCH", err)
		}
		if ok, err := ps.Reap(pid); ok || err != nil {
			t.Errorf("Reap(unknown) = %v, %v, want false, nil", ok, err)
		}
	})
}

// collect waits up to 5 s until pid has ended (a zombie, dead or gone),
// reaps it if it is a zombie, and checks that it is then gone.
func collect(t *testing.T, ps proc.Processes, pid int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := ps.Stat(pid)
		if errors.Is(err, proc.ErrGone) || (err == nil && st.Dead()) {
			return // already collected (a fake without zombies)
		}
		if err != nil {
			t.Fatalf("Stat(%d): %v", pid, err)
		}
		if st.Zombie() {
			ok, err := ps.Reap(pid)
			if err != nil {
				t.Fatalf("Reap(%d): %v", pid, err)
			}
			if ok {
				if st, err := ps.Stat(pid); !errors.Is(err, proc.ErrGone) && !(err == nil && st.Dead()) {
					t.Fatalf("after Reap, Stat(%d) = %+v, %v; want gone", pid, st, err)
				}
				return
			}
			// A multi-threaded process shows Z while its threads still exit.
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d is %+v 5 s after the signal, want it ended and reaped", pid, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Start starts a real child process (sh) in its own process group for Run
// against proc.OS: with ignoreTerm it survives SIGTERM. It returns once the
// child has installed its signal handling, and kills and reaps it at the
// end of the test if the test did not.
func Start(t *testing.T, ignoreTerm bool) int {
	t.Helper()
	script := "echo ready; exec sleep 30"
	if ignoreTerm {
		script = "trap '' TERM; echo ready; exec sleep 30" // the ignored disposition survives exec
	}
	cmd := exec.Command("sh", "-c", script)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		// os.Process signals and waits through a pidfd, so a PID the suite
		// already reaped and the kernel reused is never hit.
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	if _, err := bufio.NewReader(out).ReadString('\n'); err != nil {
		t.Fatalf("child not ready: %v", err)
	}
	return pid
}
