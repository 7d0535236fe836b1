package dream

import (
	"errors"
	"fmt"
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
// It changes nothing (it runs without the lock, beside a cycle): a state
// file that does not decode is an error naming it, and the next cycle
// sets it aside.
func (s *Scheduler) State(now time.Time) (State, error) {
	st := State{NextWindow: s.sched.Next(now)}
	cp, err := s.readCheckpoint()
	if err != nil {
		return st, stateUnreadable(err)
	}
	if cp != nil {
		st.Cycle, st.CycleState = cp.CycleID, cp.State
		if cp.State == cpRetryPending {
			st.RetryAt, st.RetryPhases = cp.NextRetryAt, slices.Clone(cp.Failed)
		}
	}
	ld, err := s.readLedger()
	if err != nil {
		return st, stateUnreadable(err)
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

// stateUnreadable says what happens to a state file that does not decode.
func stateUnreadable(err error) error {
	var ce *corruptError
	if errors.As(err, &ce) {
		return fmt.Errorf("%w: the next dream cycle sets it aside and starts afresh", err)
	}
	return err
}
