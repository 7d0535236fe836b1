package dream

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	talos "github.com/talos-ironclad/talos"
)

func TestCyclePhasesInOrderWithTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		mustRegister(t, s,
			Phase{Name: PhaseRedisFlush, Run: func(ctx context.Context) (PhaseResult, error) {
				r.add(PhaseRedisFlush)
				<-ctx.Done() // a slow flush: cut off at 30 s
				return did(5), ctx.Err()
			}},
			Phase{Name: PhaseVectorPrune, Run: func(ctx context.Context) (PhaseResult, error) {
				r.add(PhaseVectorPrune)
				return PhaseResult{}, errBoom
			}},
			r.phase(PhaseLogCompress, 0, PhaseResult{Counters: map[string]int64{"bytes_compressed": 4096}}, nil),
			r.phase(PhaseZombieHunt, 0, PhaseResult{Skipped: "no Docker engine configured"}, nil),
			r.phase(PhaseHealthReport, 0, did(1), nil),
		)
		start := time.Now()
		rep, err := s.RunNow(t.Context(), "test")
		if err != nil {
			t.Fatal(err)
		}
		want := []struct {
			name   string
			status Status
			at     time.Duration
		}{
			{PhaseRedisFlush, StatusTimedOut, 0},
			{PhaseVectorPrune, StatusFailed, 30 * time.Second},
			{PhaseLogCompress, StatusOK, 30 * time.Second},
			{PhaseZombieHunt, StatusSkipped, 30 * time.Second},
			{PhaseHealthReport, StatusOK, 30 * time.Second},
		}
		if len(rep.Phases) != len(want) {
			t.Fatalf("report has %d phases: %+v", len(rep.Phases), rep.Phases)
		}
		for i, w := range want {
			p := rep.Phases[i]
			if p.Name != w.name || p.Status != w.status {
				t.Errorf("phase %d = %s %s, want %s %s", i, p.Name, p.Status, w.name, w.status)
			}
			if got := r.get(w.name); len(got) != 1 || got[0].Sub(start) != w.at {
				t.Errorf("%s started at %v, want once at +%s", w.name, got, w.at)
			}
		}
		if p := rep.Phases[0]; p.Duration != TimeoutRedisFlush || !strings.Contains(p.Reason, "timeout of 30s") || p.Counters["items"] != 5 {
			t.Errorf("redis_flush report = %+v, want 30s, the timeout reason and its counters", p)
		}
		if p := rep.Phases[1]; p.Error != "boom" {
			t.Errorf("vector_prune error = %q", p.Error)
		}
		if p := rep.Phases[3]; p.Reason != "no Docker engine configured" {
			t.Errorf("zombie_hunt reason = %q", p.Reason)
		}
		if rep.Outcome != OutcomePartial || rep.Kind != KindOperator || rep.Reason != "test" {
			t.Errorf("report = %s %s %q", rep.Outcome, rep.Kind, rep.Reason)
		}
		end := start.Add(30 * time.Second)
		if !strings.Contains(rep.Next, "retry 1 of 3 of redis_flush, vector_prune at "+end.Add(300*time.Second).Format(time.RFC3339)) {
			t.Errorf("Next = %q", rep.Next)
		}
		cp := readCheckpoint(t, s)
		if cp.State != cpRetryPending || !cp.NextRetryAt.Equal(end.Add(300*time.Second)) {
			t.Errorf("checkpoint = %s next %s", cp.State, cp.NextRetryAt)
		}
	})
}

func TestCycleDeadlineStopsLaterPhases(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		slow := func(name string) Phase {
			return Phase{Name: name, Timeout: 1000 * time.Second, Run: func(ctx context.Context) (PhaseResult, error) {
				r.add(name)
				<-ctx.Done()
				return PhaseResult{}, ctx.Err()
			}}
		}
		mustRegister(t, s, slow("a"), slow("b"), r.phase("c", time.Second, did(1), nil))
		rep, err := s.RunNow(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Outcome != OutcomeDeadline {
			t.Errorf("outcome = %s, want deadline", rep.Outcome)
		}
		a, b, c := rep.Phases[0], rep.Phases[1], rep.Phases[2]
		if a.Status != StatusTimedOut || a.Duration != 1000*time.Second {
			t.Errorf("a = %+v", a)
		}
		if b.Status != StatusTimedOut || b.Duration != 800*time.Second || !strings.Contains(b.Reason, "cycle deadline (30m0s)") {
			t.Errorf("b = %+v, want cut by the 1800 s cycle deadline after 800 s", b)
		}
		if c.Status != StatusNotRun || !strings.Contains(c.Reason, "cycle deadline") || len(r.get("c")) != 0 {
			t.Errorf("c = %+v, runs %v, want not run", c, r.get("c"))
		}
		if rep.Duration() != DefaultCycleTimeout {
			t.Errorf("cycle took %s, want exactly %s", rep.Duration(), DefaultCycleTimeout)
		}
	})
}

func TestHungAndPanickingPhasesDoNotStopTheCycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		release := make(chan struct{})
		s := newTest(t, Config{}, nil)
		mustRegister(t, s,
			Phase{Name: "hung", Timeout: 10 * time.Second, Run: func(ctx context.Context) (PhaseResult, error) {
				<-release // ignores ctx
				return PhaseResult{}, SaveProgress(ctx, 1)
			}},
			Phase{Name: "panics", Timeout: 10 * time.Second, Run: func(context.Context) (PhaseResult, error) {
				panic("nil map")
			}},
			r.phase("after", time.Second, did(1), nil),
		)
		rep, err := s.RunNow(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if p := rep.Phases[0]; p.Status != StatusTimedOut || p.Duration != 10*time.Second+phaseGrace || !strings.Contains(p.Reason, "abandoned") {
			t.Errorf("hung = %+v", p)
		}
		if p := rep.Phases[1]; p.Status != StatusFailed || !strings.Contains(p.Error, "panicked: nil map") {
			t.Errorf("panics = %+v", p)
		}
		if p := rep.Phases[2]; p.Status != StatusOK || len(r.get("after")) != 1 {
			t.Errorf("after = %+v", p)
		}
		close(release)
		synctest.Wait()
		if cp := readCheckpoint(t, s); cp.Progress != nil {
			t.Errorf("the abandoned phase wrote progress after it was given up: %s", cp.Progress)
		}
	})
}

func TestSingleFlightInProcess(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTest(t, Config{}, nil)
		release := make(chan struct{})
		mustRegister(t, s, Phase{Name: "slow", Timeout: time.Hour, Run: func(ctx context.Context) (PhaseResult, error) {
			<-release
			return did(1), nil
		}})
		other, err := New(s.cfg, nil) // a second scheduler on the same directory
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan *Report)
		go func() {
			rep, err := s.RunNow(t.Context(), "first")
			if err != nil {
				t.Error(err)
			}
			done <- rep
		}()
		synctest.Wait()
		for name, f := range map[string]func() (*Report, error){
			"RunNow":       func() (*Report, error) { return s.RunNow(t.Context(), "second") },
			"Request":      func() (*Report, error) { return s.Request(t.Context(), "disk") },
			"other RunNow": func() (*Report, error) { return other.RunNow(t.Context(), "second") },
			"other Resume": func() (*Report, error) { return other.Resume(t.Context()) },
		} {
			rep, err := f()
			if !errors.Is(err, talos.ErrMaintenanceBusy) || rep != nil || !strings.Contains(err.Error(), "held by pid") {
				t.Errorf("%s during a cycle = %v, %v; want T011 naming the holder", name, rep, err)
			}
		}
		close(release)
		if rep := <-done; rep.Outcome != OutcomeOK {
			t.Errorf("first cycle = %s", rep.Outcome)
		}
		if _, err := other.RunNow(t.Context(), "after"); err != nil {
			t.Errorf("RunNow after the first cycle ended = %v", err)
		}
	})
}

func TestRequestAtMostOncePerInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		mustRegister(t, s, r.phase("p", time.Second, did(1), nil))
		if _, err := s.Request(t.Context(), "disk warning"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(59 * time.Minute)
		// A restart does not forget it.
		s2 := newTest(t, Config{StateDir: s.cfg.StateDir}, nil)
		mustRegister(t, s2, r.phase("p", time.Second, did(1), nil))
		_, err := s2.Request(t.Context(), "disk warning")
		if !errors.Is(err, talos.ErrMaintenanceBusy) || !strings.Contains(err.Error(), "the next is allowed at 2000-01-01T01:00:00Z") {
			t.Fatalf("second request after 59 min = %v, want T011 with the next allowed time", err)
		}
		// An operator's run is not limited.
		if _, err := s2.RunNow(t.Context(), "operator"); err != nil {
			t.Fatalf("RunNow = %v", err)
		}
		time.Sleep(time.Minute)
		rep, err := s2.Request(t.Context(), "disk warning")
		if err != nil || rep.Kind != KindAutomatic {
			t.Fatalf("request after 60 min = %v, %v", rep, err)
		}
		if n := len(r.get("p")); n != 3 {
			t.Errorf("phase ran %d times, want 3", n)
		}
	})
}

func TestInterruptedCycleResumes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		ctx, cancel := context.WithCancel(t.Context())
		mustRegister(t, s,
			r.phase("a", time.Minute, did(1), nil),
			Phase{Name: "b", Timeout: time.Minute, Run: func(pctx context.Context) (PhaseResult, error) {
				r.add("b")
				var cursor int
				if ok, err := LoadProgress(pctx, &cursor); err != nil {
					return PhaseResult{}, err
				} else if ok {
					return did(int64(cursor)), nil
				}
				if err := SaveProgress(pctx, 42); err != nil {
					return PhaseResult{}, err
				}
				cancel() // the daemon shuts down now
				<-pctx.Done()
				return PhaseResult{}, pctx.Err()
			}},
			r.phase("c", time.Minute, did(1), nil),
		)
		rep, err := s.RunNow(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		if rep.Outcome != OutcomeInterrupted || rep.Phases[1].Status != StatusInterrupted || rep.Phases[2].Status != StatusInterrupted {
			t.Fatalf("report = %+v", rep)
		}
		cp := readCheckpoint(t, s)
		if cp.State != cpRunning || cp.Current != "b" || cp.CurrentStarts != 0 || string(cp.Progress["b"]) != "42" {
			t.Fatalf("checkpoint = %+v", cp)
		}
		time.Sleep(time.Minute)
		rep2, err := s.Resume(t.Context())
		if err != nil || rep2 == nil {
			t.Fatalf("Resume = %v, %v", rep2, err)
		}
		if rep2.ID != rep.ID || rep2.Resumed != 1 || rep2.Outcome != OutcomeOK {
			t.Errorf("resumed report = %s resumed %d outcome %s", rep2.ID, rep2.Resumed, rep2.Outcome)
		}
		if rep2.Phases[1].Counters["items"] != 42 {
			t.Errorf("b did not get its progress back: %+v", rep2.Phases[1])
		}
		if len(r.get("a")) != 1 || len(r.get("b")) != 2 || len(r.get("c")) != 1 {
			t.Errorf("runs a=%d b=%d c=%d, want 1, 2, 1", len(r.get("a")), len(r.get("b")), len(r.get("c")))
		}
		if rep3, err := s.Resume(t.Context()); rep3 != nil || err != nil {
			t.Errorf("second Resume = %v, %v; want nothing to do", rep3, err)
		}
	})
}

func TestPhaseThatKeepsKillingTheProcessIsGivenUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		mustRegister(t, s, r.phase("a", time.Minute, did(1), nil), r.phase("b", time.Minute, did(1), nil))
		// As left by a process that died twice during b.
		if err := s.saveCheckpoint(&checkpoint{CycleID: reportID(time.Now(), KindOperator), Kind: KindOperator, Started: time.Now(),
			State: cpRunning, Phases: []string{"a", "b"}, Current: "a", CurrentStarts: DefaultMaxPhaseStarts}); err != nil {
			t.Fatal(err)
		}
		rep, err := s.Resume(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if p := rep.Phases[0]; p.Status != StatusFailed || !strings.Contains(p.Error, "died 2 times") || len(r.get("a")) != 0 {
			t.Errorf("a = %+v (ran %d times)", p, len(r.get("a")))
		}
		if p := rep.Phases[1]; p.Status != StatusOK {
			t.Errorf("b = %+v", p)
		}
	})
}

func TestStaleCheckpointIsNotResumed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		mustRegister(t, s, r.phase("a", time.Minute, did(1), nil))
		if err := s.saveCheckpoint(&checkpoint{CycleID: "x", Kind: KindScheduled, Started: time.Now(), State: cpRunning, Phases: []string{"a"}}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Hour) // past the 04:00 window
		if rep, err := s.Resume(t.Context()); rep != nil || err != nil {
			t.Fatalf("Resume of a cycle older than the last window = %v, %v", rep, err)
		}
		if cp := readCheckpoint(t, s); cp.State != cpDone || len(r.get("a")) != 0 {
			t.Errorf("state %s, runs %d", cp.State, len(r.get("a")))
		}
	})
}

func TestReportsJSONSummaryAndRetention(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTest(t, Config{ReportsKept: 3}, nil)
		var r runs
		mustRegister(t, s, r.phase(PhaseRedisFlush, 0, PhaseResult{Counters: map[string]int64{"keys_deleted": 12, "keys_scanned": 40}}, nil),
			r.phase(PhaseVectorPrune, 0, PhaseResult{Skipped: "1200 memories, under the 90000 trigger"}, nil))
		var ids []string
		for range 5 {
			rep, err := s.RunNow(t.Context(), "")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, rep.ID)
			time.Sleep(time.Minute)
		}
		if n := len(files(t, s.path(reportsDir), "*.json")); n != 3 {
			t.Errorf("%d JSON reports kept, want 3", n)
		}
		if n := len(files(t, s.path(reportsDir), "*.txt")); n != 3 {
			t.Errorf("%d summaries kept, want 3", n)
		}
		got, err := s.Reports(0)
		if err != nil || len(got) != 3 || got[0].ID != ids[4] || got[2].ID != ids[2] {
			t.Fatalf("Reports = %v, %v; want the newest 3, newest first", got, err)
		}
		txt := mustRead(t, s.path(reportsDir)+"/"+ids[4]+".txt")
		for _, w := range []string{"Dream cycle " + ids[4] + " (operator)", "Outcome: ok", "redis_flush   ok", "keys_deleted=12  keys_scanned=40", "vector_prune  skipped", "(1200 memories, under the 90000 trigger)", "Next: nothing"} {
			if !strings.Contains(txt, w) {
				t.Errorf("summary lacks %q:\n%s", w, txt)
			}
		}
	})
}

func TestNewAndRegisterReportEveryProblem(t *testing.T) {
	_, err := New(Config{Schedule: "61 * * * *", CycleTimeout: -1, RetryBackoff: []time.Duration{0}, ReportsKept: -1, IdleNights: -2, StartGrace: -1, OnDemandInterval: -1}, nil)
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"StateDir is empty", "minute field", "CycleTimeout", "RetryBackoff[0]", "ReportsKept", "IdleNights", "StartGrace", "OnDemandInterval"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	s := newTest(t, Config{}, nil)
	if err := s.Register(Phase{Name: PhaseRedisFlush, Run: func(context.Context) (PhaseResult, error) { return PhaseResult{}, nil }}); err != nil {
		t.Fatal(err)
	}
	err = s.Register(Phase{Name: "Bad Name\n", Timeout: -1})
	for _, w := range []string{`"Bad Name\n"`, "lower-case", "negative", "Run is nil"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Register error lacks %q: %v", w, err)
		}
	}
	err = s.Register(Phase{Name: "custom", Run: func(context.Context) (PhaseResult, error) { return PhaseResult{}, nil }})
	if err == nil || !strings.Contains(err.Error(), "no Timeout") {
		t.Errorf("custom phase without timeout = %v", err)
	}
	err = s.Register(Phase{Name: PhaseRedisFlush, Run: func(context.Context) (PhaseResult, error) { return PhaseResult{}, nil }})
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Errorf("duplicate = %v", err)
	}
	if got := s.Phases(); len(got) != 1 || got[0] != PhaseRedisFlush {
		t.Errorf("Phases = %v", got)
	}
	if SaveProgress(t.Context(), 1) == nil {
		t.Error("SaveProgress outside a phase succeeded")
	}
}

func TestState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		st, err := s.State(time.Now())
		if err != nil || st.Cycle != "" || st.Last != nil || !st.NextWindow.Equal(day(1, 4, 0)) {
			t.Fatalf("fresh state = %+v, %v", st, err)
		}
		mustRegister(t, s, r.phase("bad", time.Minute, PhaseResult{}, errBoom))
		rep, err := s.RunNow(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		st, err = s.State(time.Now())
		if err != nil || st.Cycle != rep.ID || st.CycleState != cpRetryPending || !st.RetryAt.Equal(time.Now().Add(5*time.Minute)) ||
			len(st.RetryPhases) != 1 || st.Last == nil || st.Last.ID != rep.ID {
			t.Fatalf("state = %+v, %v", st, err)
		}
	})
}

func TestCheckpointOnDiskDuringAPhase(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		var seen *checkpoint
		mustRegister(t, s, r.phase("a", time.Minute, did(3), nil), Phase{Name: "b", Timeout: time.Minute, Run: func(ctx context.Context) (PhaseResult, error) {
			seen = readCheckpoint(t, s)
			return did(1), nil
		}})
		rep, err := s.RunNow(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if seen == nil || seen.CycleID != rep.ID || seen.State != cpRunning || seen.Current != "b" || seen.CurrentStarts != 1 ||
			len(seen.Done) != 1 || seen.Done[0].Name != "a" || seen.Done[0].Counters["items"] != 3 {
			t.Fatalf("checkpoint during b = %+v", seen)
		}
		// Same instant, same kind: the IDs still differ.
		rep2, err := s.RunNow(t.Context(), "")
		if err != nil || rep2.ID == rep.ID {
			t.Fatalf("second cycle at the same instant: %v, %v", rep2, err)
		}
		if n := len(files(t, s.path(reportsDir), "*.json")); n != 2 {
			t.Errorf("%d reports, want 2", n)
		}
	})
}

func TestCorruptStateFilesAreSetAside(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{}, nil)
		mustRegister(t, s, r.phase("p", time.Minute, did(1), nil))
		for _, f := range []string{checkpointFile, ledgerFile} {
			if err := writeFileAtomic(s.path(f), []byte("{half a")); err != nil {
				t.Fatal(err)
			}
		}
		// State, which runs without the lock, reports them and moves nothing.
		if _, err := s.State(time.Now()); err == nil || !strings.Contains(err.Error(), checkpointFile) || !strings.Contains(err.Error(), "sets it aside") {
			t.Errorf("State over a corrupt checkpoint = %v, want an error naming the file", err)
		}
		if m := files(t, s.cfg.StateDir, "*.corrupt-*"); len(m) != 0 {
			t.Errorf("State set files aside: %v", m)
		}
		if rep, err := s.Resume(t.Context()); rep != nil || err != nil {
			t.Fatalf("Resume over a corrupt checkpoint = %v, %v; want nothing to resume", rep, err)
		}
		if _, err := s.State(time.Now()); err == nil || !strings.Contains(err.Error(), ledgerFile) {
			t.Errorf("State over a corrupt ledger = %v, want an error naming the file", err)
		}
		if _, err := s.Request(t.Context(), "disk"); err != nil {
			t.Fatalf("Request over a corrupt ledger = %v", err)
		}
		if _, err := s.State(time.Now()); err != nil {
			t.Errorf("State after a cycle set the files aside = %v", err)
		}
		for _, f := range []string{checkpointFile, ledgerFile} {
			if m := files(t, s.cfg.StateDir, f+".corrupt-*"); len(m) != 1 || mustRead(t, m[0]) != "{half a" {
				t.Errorf("%s set aside as %v", f, m)
			}
		}
	})
}

func TestSummaryKeepsEachPhaseOnOneLine(t *testing.T) {
	r := &Report{ID: "x", Kind: KindOperator, Outcome: OutcomePartial, Phases: []PhaseReport{
		{Name: "p", Status: StatusFailed, Error: "first\nsecond"},
	}}
	got := r.Summary()
	if !strings.Contains(got, "error: first; second\n") || strings.Count(got, "\n") != 3 {
		t.Errorf("summary:\n%s", got)
	}
}

// Run takes the lock for a moment whenever it wakes (after every cycle,
// through poke): an operator's RunNow in that moment waits for it instead
// of failing as busy, while a holder that keeps it past lockWait is T011.
func TestRunNowWaitsForAMomentaryHolder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newTest(t, Config{}, nil)
		mustRegister(t, s, Phase{Name: "p", Timeout: time.Minute, Run: func(context.Context) (PhaseResult, error) { return did(1), nil }})
		for _, held := range []time.Duration{lockRetry / 2, lockWait - lockRetry} {
			l, err := tryLock(s.path(lockFile))
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				time.Sleep(held)
				l.unlock()
			}()
			start := time.Now()
			if _, err := s.RunNow(t.Context(), "operator"); err != nil {
				t.Errorf("RunNow while the lock is held for %v = %v, want a cycle after it", held, err)
			}
			if waited := time.Since(start); waited < held {
				t.Errorf("RunNow ran after %v, before the holder let go at %v", waited, held)
			}
			synctest.Wait()
		}
		l, err := tryLock(s.path(lockFile))
		if err != nil {
			t.Fatal(err)
		}
		defer l.unlock()
		start := time.Now()
		_, err = s.RunNow(t.Context(), "operator")
		if !errors.Is(err, talos.ErrMaintenanceBusy) || time.Since(start) < lockWait {
			t.Errorf("RunNow while the lock stays held = %v after %v, want T011 after %v", err, time.Since(start), lockWait)
		}
		ctx, cancel := context.WithTimeout(t.Context(), lockRetry*3)
		defer cancel()
		start = time.Now()
		if _, err := s.RunNow(ctx, "operator"); !errors.Is(err, talos.ErrMaintenanceBusy) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > lockRetry*4 {
			t.Errorf("RunNow whose context ends while it waits = %v after %v", err, time.Since(start))
		}
	})
}
