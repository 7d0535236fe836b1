package reapertest

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/reaper"
)

// RunProcesses is the conformance suite of reaper.Processes: the OS
// implementation and the fake Procs both pass it. start creates a live
// process the suite may signal (ignoreTerm: one that survives SIGTERM) and
// returns its PID; the caller cleans it up.
func RunProcesses(t *testing.T, p reaper.Processes, start func(t *testing.T, ignoreTerm bool) int) {
	t.Helper()
	ended := func(pid int) bool {
		st, err := p.Stat(pid)
		return errors.Is(err, reaper.ErrGone) || (err == nil && st.Zombie())
	}
	waitEnded := func(t *testing.T, pid int) bool {
		deadline := time.Now().Add(3 * time.Second)
		for time.Now().Before(deadline) {
			if ended(pid) {
				return true
			}
			time.Sleep(5 * time.Millisecond)
		}
		return false
	}

	t.Run("Stat", func(t *testing.T) {
		pid := start(t, false)
		st, err := p.Stat(pid)
		if err != nil {
			t.Fatalf("Stat(%d): %v", pid, err)
		}
		if st.PID != pid || st.StartTime == 0 || st.Zombie() {
			t.Errorf("Stat(%d) = %+v: want its PID, a start time, not a zombie", pid, st)
		}
		if _, err := p.Stat(1<<22 + 12345); !errors.Is(err, reaper.ErrGone) {
			t.Errorf("Stat(missing) = %v, want ErrGone", err)
		}
		if _, err := p.Stat(0); !errors.Is(err, reaper.ErrGone) {
			t.Errorf("Stat(0) = %v, want ErrGone", err)
		}
	})

	t.Run("NeverBroadcasts", func(t *testing.T) {
		// kill(0), kill(-1) and kill(-pgid≤1) would hit whole groups or every
		// process; with signal 0 nothing is sent even if an implementation
		// wrongly passes them through.
		for _, pid := range []int{0, -1, -42} {
			if err := p.Signal(pid, 0); err == nil {
				t.Errorf("Signal(%d) succeeded: a non-positive PID must be refused", pid)
			}
		}
		for _, pgid := range []int{0, 1, -1} {
			if err := p.SignalGroup(pgid, 0); err == nil {
				t.Errorf("SignalGroup(%d) succeeded: must be refused", pgid)
			}
		}
	})

	t.Run("TermThenKill", func(t *testing.T) {
		polite := start(t, false)
		if err := p.Signal(polite, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		if !waitEnded(t, polite) {
			t.Errorf("process %d did not end on SIGTERM", polite)
		}
		stubborn := start(t, true)
		if err := p.Signal(stubborn, syscall.SIGTERM); err != nil {
			t.Fatalf("SIGTERM: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
		if ended(stubborn) {
			t.Fatalf("process %d ignoring SIGTERM ended on it", stubborn)
		}
		if err := p.Signal(stubborn, syscall.SIGKILL); err != nil {
			t.Fatalf("SIGKILL: %v", err)
		}
		if !waitEnded(t, stubborn) {
			t.Errorf("process %d did not end on SIGKILL", stubborn)
		}
	})
}
