package dream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// phaseGrace is how long a phase may take to return after its context is
// done before the cycle abandons it and goes on.
const phaseGrace = 5 * time.Second

// RunNow runs a full cycle now (talos dream run --now) and returns its
// report. It fails with T011 (talos.ErrMaintenanceBusy) when another cycle
// holds the lock, in this process or another, and does not let go of it
// within two seconds. A cycle whose phases fail
// still returns its report and a nil error; failed phases get recovery
// retries from Run. A new full cycle replaces a cycle waiting for a resume
// or a retry.
func (s *Scheduler) RunNow(ctx context.Context, reason string) (*Report, error) {
	const op = "dream.RunNow"
	l, err := s.lock(ctx, op)
	if err != nil {
		return nil, err
	}
	defer l.unlock()
	defer s.poke()
	return s.startCycle(ctx, op, KindOperator, reason, time.Time{})
}

// Request runs a full cycle now for an automatic caller (the disk monitor),
// at most one per OnDemandInterval across processes and restarts. Too soon,
// or while another cycle holds the lock for more than two seconds, it fails
// with T011 (talos.ErrMaintenanceBusy) saying when the next one is allowed.
func (s *Scheduler) Request(ctx context.Context, reason string) (*Report, error) {
	const op = "dream.Request"
	l, err := s.lock(ctx, op)
	if err != nil {
		return nil, err
	}
	defer l.unlock()
	defer s.poke()
	ld, err := s.loadLedger()
	if err != nil {
		return nil, talos.E(talos.CodeMaintenanceState, op, "the dream ledger is unreadable", err)
	}
	now := time.Now()
	if !ld.LastAutomatic.IsZero() && now.Before(ld.LastAutomatic.Add(s.cfg.OnDemandInterval)) {
		return nil, talos.Errorf(talos.CodeMaintenanceBusy, op,
			"an automatic dream cycle already ran at %s; the next is allowed at %s (at most one per %s)",
			ld.LastAutomatic.Format(time.RFC3339), ld.LastAutomatic.Add(s.cfg.OnDemandInterval).Format(time.RFC3339), s.cfg.OnDemandInterval)
	}
	ld.LastAutomatic = now
	if err := s.saveLedger(ld); err != nil {
		return nil, talos.E(talos.CodeMaintenanceState, op, "the dream ledger could not be written, so the cycle did not start", err)
	}
	return s.startCycle(ctx, op, KindAutomatic, reason, time.Time{})
}

// Resume finishes a cycle whose process died (or shut down) in the middle:
// phases that finished are not run again, the phase that was running
// starts again (with its saved progress, see LoadProgress). It returns a
// nil report when there is nothing to resume. A cycle left over from
// before the latest scheduled window is not resumed: the window's own
// cycle runs every phase again. Run does the same when it starts. While
// another cycle holds the lock for more than two seconds it fails with
// T011 (talos.ErrMaintenanceBusy).
func (s *Scheduler) Resume(ctx context.Context) (*Report, error) {
	const op = "dream.Resume"
	l, err := s.lock(ctx, op)
	if err != nil {
		return nil, err
	}
	defer l.unlock()
	return s.resumeLocked(ctx, op)
}

func (s *Scheduler) resumeLocked(ctx context.Context, op string) (*Report, error) {
	cp, err := s.loadCheckpoint()
	if err != nil {
		return nil, talos.E(talos.CodeMaintenanceState, op, "the dream checkpoint is unreadable", err)
	}
	if cp == nil || cp.State != cpRunning {
		return nil, nil
	}
	now := time.Now()
	if next := s.sched.Next(cp.Started); !now.Before(next) {
		s.log.Warn("dream cycle not resumed: a scheduled window came since it started", "cycle", cp.CycleID, "window", next)
		cp.State = cpDone
		if err := s.saveCheckpoint(cp); err != nil {
			return nil, talos.E(talos.CodeMaintenanceState, op, "the dream checkpoint could not be written", err)
		}
		return nil, nil
	}
	cp.Resumed++
	s.log.Info("resuming dream cycle", "cycle", cp.CycleID, "done", len(cp.Done), "of", len(cp.Phases), "current", cp.Current)
	budget := min(s.cfg.CycleTimeout, s.sched.Next(now).Sub(now)-phaseGrace)
	return s.runCycle(ctx, op, cp, budget)
}

// lock takes the dream lock for RunNow, Request and Resume. A holder that
// lets go within lockWait is waited for: Run holds the lock for a moment
// each time it wakes to look for due work (a poke after every cycle, the
// start of the daemon), and a request arriving in that moment is not busy.
// A cycle that still holds it after lockWait is T011.
func (s *Scheduler) lock(ctx context.Context, op string) (*fileLock, error) {
	deadline := time.Now().Add(lockWait)
	l, err := tryLock(s.path(lockFile))
	for errors.Is(err, errLocked) && time.Now().Before(deadline) {
		t := time.NewTimer(lockRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, talos.E(talos.CodeMaintenanceBusy, op, "a dream cycle holds the lock, and the wait for it ended", errors.Join(ctx.Err(), err))
		case <-t.C:
		}
		l, err = tryLock(s.path(lockFile))
	}
	if errors.Is(err, errLocked) {
		return nil, talos.E(talos.CodeMaintenanceBusy, op, "a dream cycle is already running: wait for it to finish (its report appears in "+s.path(reportsDir)+")", err)
	}
	if err != nil {
		return nil, talos.E(talos.CodeMaintenanceState, op, "the dream lock could not be taken", err)
	}
	return l, nil
}

// startCycle begins a full cycle of every registered phase. The lock is
// held.
func (s *Scheduler) startCycle(ctx context.Context, op string, kind Kind, reason string, window time.Time) (*Report, error) {
	now := time.Now()
	cp := &checkpoint{
		CycleID: s.newCycleID(now, kind),
		Kind:    kind,
		Reason:  reason,
		Window:  window,
		Started: now,
		State:   cpRunning,
		Phases:  s.Phases(),
	}
	return s.runCycle(ctx, op, cp, s.cfg.CycleTimeout)
}

// runRetry runs the failed phases of a cycle waiting for its retry. The
// lock is held.
func (s *Scheduler) runRetry(ctx context.Context, op string, pending *checkpoint) (*Report, error) {
	now := time.Now()
	nextWin := s.sched.Next(now)
	need := s.budgetFor(pending.Failed)
	if now.Add(need + phaseGrace).After(nextWin) {
		why := fmt.Sprintf("retry %d of %d would not finish before the next window at %s", pending.RetryAttempt+1, len(s.cfg.RetryBackoff), nextWin.Format(time.RFC3339))
		return nil, s.escalate(ctx, op, pending, why)
	}
	origin := pending.Origin
	if origin == "" {
		origin = pending.CycleID
	}
	cp := &checkpoint{
		CycleID:      s.newCycleID(now, KindRetry),
		Kind:         KindRetry,
		Reason:       "retry of " + origin,
		Window:       pending.Window,
		Started:      now,
		State:        cpRunning,
		Phases:       pending.Failed,
		RetryAttempt: pending.RetryAttempt + 1,
		Origin:       origin,
	}
	// Even a phase that ignores its deadline is abandoned before the window.
	return s.runCycle(ctx, op, cp, min(s.cfg.CycleTimeout, nextWin.Sub(now)-phaseGrace))
}

// newCycleID returns an ID for a cycle starting at t that no stored report
// uses yet.
func (s *Scheduler) newCycleID(t time.Time, k Kind) string {
	id := reportID(t, k)
	for i := 2; ; i++ {
		if _, err := os.Lstat(filepath.Join(s.path(reportsDir), id+".json")); errors.Is(err, os.ErrNotExist) {
			return id
		}
		id = fmt.Sprintf("%s-%d", reportID(t, k), i)
	}
}

// budgetFor is the time a run of the named phases may need: the sum of
// their timeouts, at most the cycle timeout.
func (s *Scheduler) budgetFor(names []string) time.Duration {
	var sum time.Duration
	for _, p := range s.phaseList() {
		for _, n := range names {
			if p.Name == n {
				sum += p.Timeout
			}
		}
	}
	return min(sum, s.cfg.CycleTimeout)
}

// phaseRun is what a phase's context carries for SaveProgress and
// LoadProgress.
type phaseRun struct {
	s     *Scheduler
	mu    *sync.Mutex // guards cp and done against the cycle's own writes
	cp    *checkpoint
	name  string
	saved json.RawMessage // progress from an earlier run, read at the start
	done  atomic.Bool
}

type ctxKey struct{}

// SaveProgress stores v (as JSON) in the cycle's checkpoint as the progress
// of the phase running with ctx, written atomically at once. If the process
// dies, the resumed cycle's run of the phase gets it back from
// LoadProgress. Outside a phase, or after the phase was abandoned, it
// returns an error and stores nothing.
func SaveProgress(ctx context.Context, v any) error {
	pr, _ := ctx.Value(ctxKey{}).(*phaseRun)
	if pr == nil {
		return errors.New("dream.SaveProgress: ctx is not a dream phase's context")
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("dream.SaveProgress: encode the progress of %s: %w", pr.name, err)
	}
	pr.mu.Lock()
	defer pr.mu.Unlock()
	if pr.done.Load() {
		return fmt.Errorf("dream.SaveProgress: phase %s already ended (abandoned after its timeout?)", pr.name)
	}
	if pr.cp.Progress == nil {
		pr.cp.Progress = map[string]json.RawMessage{}
	}
	pr.cp.Progress[pr.name] = b
	return pr.s.saveCheckpoint(pr.cp)
}

// LoadProgress decodes into v the progress the phase running with ctx saved
// in an earlier, interrupted run of the same cycle. It returns false when
// there is none (the phase starts from the beginning).
func LoadProgress(ctx context.Context, v any) (bool, error) {
	pr, _ := ctx.Value(ctxKey{}).(*phaseRun)
	if pr == nil {
		return false, errors.New("dream.LoadProgress: ctx is not a dream phase's context")
	}
	if pr.saved == nil {
		return false, nil
	}
	if err := json.Unmarshal(pr.saved, v); err != nil {
		return false, fmt.Errorf("dream.LoadProgress: decode the progress of %s: %w", pr.name, err)
	}
	return true, nil
}

// runCycle runs cp's phases that are not done yet, in order, within budget,
// checkpointing before and after each, then finishes the cycle (report,
// retries, escalation, ledger). The lock is held.
func (s *Scheduler) runCycle(ctx context.Context, op string, cp *checkpoint, budget time.Duration) (*Report, error) {
	var mu sync.Mutex
	save := func() error {
		mu.Lock()
		defer mu.Unlock()
		return s.saveCheckpoint(cp)
	}
	if err := save(); err != nil {
		return nil, talos.E(talos.CodeMaintenanceState, op, "the dream checkpoint could not be written, so the cycle did not start", err)
	}
	registered := map[string]Phase{}
	for _, p := range s.phaseList() {
		registered[p.Name] = p
	}
	done := map[string]PhaseReport{}
	for _, r := range cp.Done {
		done[r.Name] = r
	}
	cycleCtx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	s.log.InfoContext(ctx, "dream cycle started", "cycle", cp.CycleID, "kind", string(cp.Kind), "phases", len(cp.Phases), "budget", budget)

	var results []PhaseReport
	interrupted := false
	for i, name := range cp.Phases {
		if r, ok := done[name]; ok {
			results = append(results, r)
			continue
		}
		if ctx.Err() != nil {
			interrupted = true
			for _, n := range cp.Phases[i:] {
				results = append(results, PhaseReport{Name: n, Status: StatusInterrupted, Reason: "the process was shutting down; the cycle resumes at the next start"})
			}
			break
		}
		var r PhaseReport
		p, ok := registered[name]
		switch {
		case cycleCtx.Err() != nil:
			r = PhaseReport{Name: name, Status: StatusNotRun, Reason: fmt.Sprintf("the cycle deadline (%s) was reached before it started", budget)}
		case !ok:
			r = PhaseReport{Name: name, Status: StatusFailed, Error: "the phase is no longer registered (did its package fail to start?)"}
		default:
			mu.Lock()
			if cp.Current == name {
				cp.CurrentStarts++
			} else {
				cp.Current, cp.CurrentStarts = name, 1
			}
			starts := cp.CurrentStarts
			mu.Unlock()
			if starts > DefaultMaxPhaseStarts {
				r = PhaseReport{Name: name, Status: StatusFailed,
					Error: fmt.Sprintf("the process died %d times while this phase ran; it is not started again in this cycle", starts-1)}
				break
			}
			if err := save(); err != nil {
				r = PhaseReport{Name: name, Status: StatusFailed, Error: "checkpoint not written, phase not started: " + err.Error()}
				break
			}
			r = s.runPhase(ctx, cycleCtx, p, budget, &mu, cp)
		}
		if r.Status == StatusInterrupted {
			mu.Lock()
			cp.CurrentStarts-- // a shutdown is not a crash
			mu.Unlock()
			_ = save()
			interrupted = true
			results = append(results, r)
			for _, n := range cp.Phases[i+1:] {
				results = append(results, PhaseReport{Name: n, Status: StatusInterrupted, Reason: "the process was shutting down; the cycle resumes at the next start"})
			}
			break
		}
		s.log.InfoContext(ctx, "dream phase ended", "cycle", cp.CycleID, "phase", name, "status", string(r.Status), "duration", r.Duration, "reason", r.Reason, "error", r.Error)
		results = append(results, r)
		mu.Lock()
		cp.Done = append(cp.Done, r)
		cp.Current, cp.CurrentStarts = "", 0
		delete(cp.Progress, name)
		mu.Unlock()
		if err := save(); err != nil {
			s.log.ErrorContext(ctx, "dream checkpoint not written", "cycle", cp.CycleID, "err", err)
		}
	}

	rep := &Report{
		ID: cp.CycleID, Kind: cp.Kind, Reason: cp.Reason, Window: cp.Window, Attempt: cp.RetryAttempt,
		Started: cp.Started, Finished: time.Now(), Resumed: cp.Resumed, Phases: results,
	}
	if interrupted {
		rep.Outcome = OutcomeInterrupted
		rep.Next = "resume at the next start"
		if err := s.writeReport(rep); err != nil {
			s.log.ErrorContext(ctx, "dream report not written", "cycle", cp.CycleID, "err", err)
		}
		return rep, nil
	}
	return rep, s.finish(ctx, op, cp, rep)
}

// runPhase runs one phase with its timeout inside the cycle's context.
func (s *Scheduler) runPhase(parent, cycleCtx context.Context, p Phase, budget time.Duration, mu *sync.Mutex, cp *checkpoint) PhaseReport {
	pctx, cancel := context.WithTimeout(cycleCtx, p.Timeout)
	defer cancel()
	mu.Lock()
	pr := &phaseRun{s: s, mu: mu, cp: cp, name: p.Name, saved: cp.Progress[p.Name]}
	mu.Unlock()
	pctx = context.WithValue(pctx, ctxKey{}, pr)
	type outcome struct {
		res PhaseResult
		err error
	}
	ch := make(chan outcome, 1)
	start := time.Now()
	go func() {
		defer func() {
			if v := recover(); v != nil {
				ch <- outcome{err: fmt.Errorf("panicked: %v", v)}
			}
		}()
		res, err := p.Run(pctx)
		ch <- outcome{res, err}
	}()
	var o outcome
	abandoned := false
	select {
	case o = <-ch:
	case <-pctx.Done():
		grace := time.NewTimer(phaseGrace)
		select {
		case o = <-ch:
		case <-grace.C:
			abandoned = true
		}
		grace.Stop()
	}
	mu.Lock()
	pr.done.Store(true)
	mu.Unlock()
	r := PhaseReport{Name: p.Name, Started: start, Duration: time.Since(start), Counters: maps.Clone(o.res.Counters)}
	cut := func() string {
		if cycleCtx.Err() != nil {
			return fmt.Sprintf("the cycle deadline (%s) was reached", budget)
		}
		return fmt.Sprintf("its timeout of %s was reached", p.Timeout)
	}
	switch {
	case parent.Err() != nil && (abandoned || o.err != nil):
		r.Status = StatusInterrupted
		r.Reason = "the process was shutting down; the phase runs again when the cycle resumes"
	case abandoned:
		r.Status = StatusTimedOut
		r.Reason = cut() + fmt.Sprintf(" and it did not return within %s: abandoned", phaseGrace)
	case o.err == nil && o.res.Skipped != "":
		r.Status, r.Reason = StatusSkipped, o.res.Skipped
	case o.err == nil:
		r.Status = StatusOK
	case pctx.Err() != nil && errors.Is(pctx.Err(), context.DeadlineExceeded):
		r.Status, r.Reason, r.Error = StatusTimedOut, cut(), o.err.Error()
	default:
		r.Status, r.Error = StatusFailed, o.err.Error()
	}
	return r
}

// finish decides what comes after a cycle that ran to its end: nothing, a
// retry of the failed phases, or an escalation; then writes the report,
// the checkpoint and the ledger. The lock is held.
func (s *Scheduler) finish(ctx context.Context, op string, cp *checkpoint, rep *Report) error {
	var failed, errs []string
	deadline := false
	for _, r := range rep.Phases {
		if r.Status == StatusNotRun {
			deadline = true
		}
		if r.failed() {
			failed = append(failed, r.Name)
			msg := r.Error
			if msg == "" {
				msg = r.Reason
			}
			errs = append(errs, r.Name+": "+msg)
		}
	}
	switch {
	case deadline:
		rep.Outcome = OutcomeDeadline
	case len(failed) > 0:
		rep.Outcome = OutcomePartial
	default:
		rep.Outcome = OutcomeOK
	}
	var escalation error
	cp.Current, cp.CurrentStarts, cp.Progress = "", 0, nil
	if len(failed) == 0 {
		cp.State = cpDone
		cp.Failed, cp.LastError = nil, ""
		rep.Next = "nothing: every phase succeeded"
		if cp.Kind == KindRetry {
			rep.Next = "nothing: the retried phases succeeded"
		}
	} else {
		cp.Failed = failed
		cp.LastError = strings.Join(errs, "; ")
		if cp.Origin == "" {
			cp.Origin = cp.CycleID
		}
		now := time.Now()
		n := cp.RetryAttempt // retries already run for these failures
		if n >= len(s.cfg.RetryBackoff) {
			rep.Next = fmt.Sprintf("escalation: still failing after %d retries", n)
			escalation = s.escalate(ctx, op, cp, fmt.Sprintf("still failing after %d retries", n))
		} else {
			at := now.Add(s.cfg.RetryBackoff[n])
			nextWin := s.sched.Next(now)
			if at.Add(s.budgetFor(failed) + phaseGrace).After(nextWin) {
				why := fmt.Sprintf("retry %d of %d would not finish before the next window at %s", n+1, len(s.cfg.RetryBackoff), nextWin.Format(time.RFC3339))
				rep.Next = "escalation: " + why
				escalation = s.escalate(ctx, op, cp, why)
			} else {
				cp.State, cp.NextRetryAt = cpRetryPending, at
				rep.Next = fmt.Sprintf("retry %d of %d of %s at %s", n+1, len(s.cfg.RetryBackoff), strings.Join(failed, ", "), at.Format(time.RFC3339))
			}
		}
	}
	var errsOut []error
	if err := s.writeReport(rep); err != nil {
		errsOut = append(errsOut, err)
	}
	if cp.State == cpRunning {
		cp.State = cpDone
	}
	if err := s.saveCheckpoint(cp); err != nil {
		errsOut = append(errsOut, err)
	}
	if err := s.updateIdle(ctx, rep); err != nil {
		errsOut = append(errsOut, err)
	}
	if escalation != nil {
		errsOut = append(errsOut, escalation)
	}
	s.log.InfoContext(ctx, "dream cycle ended", "cycle", rep.ID, "outcome", string(rep.Outcome), "duration", rep.Duration(), "next", rep.Next)
	if len(errsOut) > 0 {
		return talos.E(talos.CodeMaintenanceState, op, "the dream cycle ran but its state was not fully recorded", errors.Join(errsOut...))
	}
	return nil
}

// escalation is the file written when failed phases are given up on.
type escalation struct {
	Timestamp      time.Time   `json:"timestamp"`
	Cycle          string      `json:"cycle"`
	Phases         []string    `json:"phases"`
	Error          string      `json:"error"`
	Why            string      `json:"why"`
	Checkpoint     *checkpoint `json:"checkpoint"`
	Severity       string      `json:"severity"`
	ActionRequired string      `json:"action_required"`
}

// escalate writes an escalation file and raises a critical alert; the
// failures are not retried any more.
func (s *Scheduler) escalate(ctx context.Context, op string, cp *checkpoint, why string) error {
	now := time.Now()
	cp.State = cpDone
	cp.NextRetryAt = time.Time{}
	e := escalation{
		Timestamp: now, Cycle: cp.CycleID, Phases: cp.Failed, Error: cp.LastError, Why: why, Checkpoint: cp,
		Severity: "CRITICAL", ActionRequired: "Manual intervention needed: read the error, fix the cause, then run `talos dream run --now`",
	}
	file := filepath.Join(s.path(escalationsDir), fmt.Sprintf("%d.json", now.Unix()))
	for i := 1; ; i++ {
		if _, err := os.Lstat(file); errors.Is(err, os.ErrNotExist) {
			break
		}
		file = filepath.Join(s.path(escalationsDir), fmt.Sprintf("%d-%d.json", now.Unix(), i))
	}
	werr := writeJSON(file, e)
	if werr != nil {
		file = "(not written: " + werr.Error() + ")"
	}
	s.raise(ctx, Alert{
		Severity: talos.SeverityCritical, Kind: AlertEscalation, Phase: strings.Join(cp.Failed, ","), File: file,
		Message: fmt.Sprintf("Dream cycle phase %s failed (%s; %s). Escalation written to %s", strings.Join(cp.Failed, ", "), why, cp.LastError, file),
	})
	if err := s.saveCheckpoint(cp); err != nil {
		return errors.Join(werr, err)
	}
	if werr != nil {
		return talos.E(talos.CodeMaintenanceState, op, "the escalation file could not be written", werr)
	}
	return nil
}

// updateIdle counts, per phase, the scheduled cycles in a row that did
// nothing useful, and alerts when a count reaches IdleNights. A retry that
// makes a phase useful resets its count.
func (s *Scheduler) updateIdle(ctx context.Context, rep *Report) error {
	if rep.Kind != KindScheduled && rep.Kind != KindRetry {
		return nil
	}
	ld, err := s.loadLedger()
	if err != nil {
		return err
	}
	for _, p := range rep.Phases {
		switch {
		case p.Useful():
			ld.IdleNights[p.Name] = 0
		case rep.Kind == KindScheduled:
			ld.IdleNights[p.Name]++
			if ld.IdleNights[p.Name] == s.cfg.IdleNights {
				s.raise(ctx, Alert{Severity: talos.SeverityWarning, Kind: AlertIdlePhase, Phase: p.Name,
					Message: fmt.Sprintf("dream phase %s did nothing useful in %d scheduled cycles in a row (latest: %s %s): check its configuration and the reports in %s",
						p.Name, ld.IdleNights[p.Name], p.Status, strings.TrimSpace(p.Error+" "+p.Reason), s.path(reportsDir))})
			}
		}
	}
	return s.saveLedger(ld)
}
