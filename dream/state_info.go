package dream

import (
	"slices"
	"time"
)

// State is what the scheduler's files say now, for /health and the
// dashboard. It takes no lock, so it never delays a cycle.
type State struct {
	// NextWindow is the next scheduled window.
	NextWindow time.Time
	// Cycle is the latest cycle's ID and CycleState its state: "running"
	// (running now, or killed and waiting for Resume), "retry_pending" or
	// "done"; both are empty before the first cycle.
	Cycle      string
	CycleState string
	// RetryAt and RetryPhases say when which failed phases are retried.
	RetryAt     time.Time
	RetryPhases []string
	// Missed counts the scheduled windows missed so far.
	Missed int
	// IdleNights is, per phase, how many scheduled cycles in a row it did
	// nothing useful.
	IdleNights map[string]int
	// Last is the newest report, nil before the first.
	Last *Report
}

// State reads the scheduler's state. now is the reference for NextWindow.
func (s *Scheduler) State(now time.Time) (State, error) {
	st := State{NextWindow: s.sched.Next(now)}
	cp, err := s.loadCheckpoint()
	if err != nil {
		return st, err
	}
	if cp != nil {
		st.Cycle, st.CycleState = cp.CycleID, cp.State
		if cp.State == cpRetryPending {
			st.RetryAt, st.RetryPhases = cp.NextRetryAt, slices.Clone(cp.Failed)
		}
	}
	ld, err := s.loadLedger()
	if err != nil {
		return st, err
	}
	st.Missed, st.IdleNights = ld.Missed, ld.IdleNights
	reps, err := s.Reports(1)
	if err != nil {
		return st, err
	}
	if len(reps) > 0 {
		st.Last = reps[0]
	}
	return st, nil
}
