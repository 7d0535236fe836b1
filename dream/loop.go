package dream

import (
	"context"
	"errors"
	"fmt"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// maxDueWindows bounds how many past windows one step looks at (a schedule
// every minute and a daemon down for a week).
const maxDueWindows = 100_000

// Run runs the schedule until ctx is done, then returns nil (a cycle in
// progress is interrupted and resumes at the next start). At start, and
// whenever it wakes, it resumes a killed cycle, runs a due window (at most
// once per window across processes; a window more than StartGrace late, or
// one that passed while nobody ran, is recorded as missed and raises an
// alert) and a due recovery retry. Call it once per process, after every
// phase is registered: a resumed cycle reports a phase that is not
// registered yet as failed.
func (s *Scheduler) Run(ctx context.Context) error {
	for {
		wait := s.step(ctx)
		if ctx.Err() != nil {
			return nil
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		case <-s.wake:
			t.Stop()
		}
	}
}

// step does whatever is due now and returns how long to wait for the next
// thing.
func (s *Scheduler) step(ctx context.Context) time.Duration {
	const op = "dream.Run"
	l, err := tryLock(s.path(lockFile))
	if err != nil {
		if !errors.Is(err, errLocked) {
			s.log.ErrorContext(ctx, "dream lock not taken", "err", err)
		}
		return lockPoll // another process runs a cycle; look again soon
	}
	defer l.unlock()

	if _, err := s.resumeLocked(ctx, op); err != nil {
		s.log.ErrorContext(ctx, "dream cycle not resumed", "err", err)
	}
	if ctx.Err() != nil {
		return 0
	}
	if err := s.windows(ctx, op); err != nil {
		s.log.ErrorContext(ctx, "dream window not handled", "err", err)
		return lockPoll
	}
	if ctx.Err() != nil {
		return 0
	}
	cp, err := s.loadCheckpoint()
	if err != nil {
		s.log.ErrorContext(ctx, "dream checkpoint unreadable", "err", err)
		return lockPoll
	}
	if cp != nil && cp.State == cpRetryPending && !time.Now().Before(cp.NextRetryAt) {
		if _, err := s.runRetry(ctx, op, cp); err != nil {
			s.log.ErrorContext(ctx, "dream retry", "err", err)
		}
		if cp, err = s.loadCheckpoint(); err != nil {
			return lockPoll
		}
	}
	now := time.Now()
	wait := s.sched.Next(now).Sub(now)
	if cp != nil && cp.State == cpRetryPending {
		wait = min(wait, cp.NextRetryAt.Sub(now))
	}
	return max(wait, 0)
}

// windows records the windows that passed since the last one handled: the
// latest runs if it is at most StartGrace late, the others are missed. The
// lock is held.
func (s *Scheduler) windows(ctx context.Context, op string) error {
	ld, err := s.loadLedger()
	if err != nil {
		return err
	}
	now := time.Now()
	if ld.LastWindow.IsZero() {
		// First start on this state directory: windows count from now.
		ld.LastWindow = now
		return s.saveLedger(ld)
	}
	var due []time.Time
	for w := s.sched.Next(ld.LastWindow); !w.After(now) && len(due) < maxDueWindows; w = s.sched.Next(w) {
		due = append(due, w)
	}
	if len(due) == 0 {
		return nil
	}
	last := due[len(due)-1]
	run := now.Sub(last) <= s.cfg.StartGrace
	missed := due
	if run {
		missed = due[:len(due)-1]
	}
	if len(missed) > 0 {
		ld.Missed += len(missed)
		ld.LastWindow = missed[len(missed)-1]
		if err := s.saveLedger(ld); err != nil {
			return err
		}
		latest := missed[len(missed)-1]
		s.raise(ctx, Alert{Severity: talos.SeverityWarning, Kind: AlertMissedWindow,
			Message: fmt.Sprintf("%d scheduled dream window(s) passed without a cycle, the latest at %s (was the daemon down or busy past the %s grace?): run `talos dream run --now` to clean up now",
				len(missed), latest.Format(time.RFC3339), s.cfg.StartGrace)})
	}
	if !run {
		return nil
	}
	// Claim the window before running it, so that it runs at most once
	// even if this process dies during the cycle (Resume finishes it).
	ld.LastWindow = last
	if err := s.saveLedger(ld); err != nil {
		return err
	}
	_, err = s.startCycle(ctx, op, KindScheduled, "", last)
	return err
}
