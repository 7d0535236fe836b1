package dream

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// synctest's clock starts at 2000-01-01 00:00:00 UTC.
func day(d, h, m int) time.Time { return time.Date(2000, 1, d, h, m, 0, 0, time.UTC) }

func TestRunEachWindowOnceAcrossSchedulers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		dir := t.TempDir()
		a := newTest(t, Config{StateDir: dir}, nil)
		b := newTest(t, Config{StateDir: dir}, nil)
		mustRegister(t, a, r.phase("p", time.Minute, did(1), nil))
		mustRegister(t, b, r.phase("p", time.Minute, did(1), nil))
		stopA, stopB := startRun(t, a), startRun(t, b)
		time.Sleep(day(3, 5, 0).Sub(time.Now()))
		stopA()
		stopB()
		got := r.get("p")
		want := []time.Time{day(1, 4, 0), day(2, 4, 0), day(3, 4, 0)}
		if len(got) != len(want) {
			t.Fatalf("phase ran at %v, want %v", got, want)
		}
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Errorf("run %d at %s, want %s", i, got[i], want[i])
			}
		}
		reps, _ := a.Reports(0)
		if len(reps) != 3 || reps[0].Kind != KindScheduled || !reps[0].Window.Equal(day(3, 4, 0)) {
			t.Errorf("reports = %d, newest %+v", len(reps), reps[0])
		}
	})
}

func TestRunInTimeZone(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	synctest.Test(t, func(t *testing.T) {
		var r runs
		s := newTest(t, Config{Location: ny}, nil)
		mustRegister(t, s, r.phase("p", time.Minute, did(1), nil))
		stop := startRun(t, s)
		time.Sleep(day(2, 0, 0).Sub(time.Now()))
		stop()
		// 04:00 in New York in January is 09:00 UTC.
		if got := r.get("p"); len(got) != 1 || !got[0].Equal(day(1, 9, 0)) {
			t.Fatalf("ran at %v, want once at 09:00 UTC", got)
		}
	})
}

func TestRecoveryRetriesThenEscalation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		var al alerts
		s := newTest(t, Config{}, &al)
		mustRegister(t, s,
			r.phase("good", time.Minute, did(1), nil),
			r.phase("bad", time.Minute, PhaseResult{}, errBoom),
		)
		stop := startRun(t, s)
		time.Sleep(day(1, 23, 0).Sub(time.Now()))
		stop()
		// 04:00, then +300 s, +900 s, +3,600 s after each failure.
		want := []time.Time{day(1, 4, 0), day(1, 4, 5), day(1, 4, 20), day(1, 5, 20)}
		got := r.get("bad")
		if len(got) != len(want) {
			t.Fatalf("bad ran at %v, want %v", got, want)
		}
		for i := range want {
			if !got[i].Equal(want[i]) {
				t.Errorf("run %d of bad at %s, want %s", i, got[i].Format("15:04:05"), want[i].Format("15:04:05"))
			}
		}
		if n := len(r.get("good")); n != 1 {
			t.Errorf("good ran %d times, want once: retries run only the failed phases", n)
		}
		esc := al.of(AlertEscalation)
		if len(esc) != 1 || esc[0].Severity != talos.SeverityCritical || esc[0].Phase != "bad" || !esc[0].Time.Equal(day(1, 5, 20)) {
			t.Fatalf("escalation alerts = %+v", esc)
		}
		if !strings.Contains(esc[0].Message, "still failing after 3 retries") || !strings.Contains(esc[0].Message, esc[0].File) {
			t.Errorf("alert message = %q", esc[0].Message)
		}
		var e escalation
		if err := json.Unmarshal([]byte(mustRead(t, esc[0].File)), &e); err != nil {
			t.Fatal(err)
		}
		if e.Severity != "CRITICAL" || len(e.Phases) != 1 || e.Phases[0] != "bad" || !strings.Contains(e.Error, "boom") ||
			e.Checkpoint == nil || e.Checkpoint.RetryAttempt != 3 || !strings.HasPrefix(e.ActionRequired, "Manual intervention") {
			t.Errorf("escalation file = %+v", e)
		}
		if cp := readCheckpoint(t, s); cp.State != cpDone {
			t.Errorf("checkpoint state after escalation = %s", cp.State)
		}
		reps, _ := s.Reports(0)
		if len(reps) != 4 || reps[0].Kind != KindRetry || reps[0].Attempt != 3 || len(reps[0].Phases) != 1 {
			t.Errorf("reports: %d, newest %+v", len(reps), reps[0])
		}
	})
}

func TestRetrySucceedsAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		var al alerts
		s := newTest(t, Config{}, &al)
		mustRegister(t, s, Phase{Name: "flaky", Timeout: time.Minute, Run: func(context.Context) (PhaseResult, error) {
			r.add("flaky")
			if len(r.get("flaky")) < 3 {
				return PhaseResult{}, errBoom
			}
			return did(3), nil
		}})
		stop := startRun(t, s)
		time.Sleep(day(1, 23, 0).Sub(time.Now()))
		stop()
		if got := r.get("flaky"); len(got) != 3 || !got[2].Equal(day(1, 4, 20)) {
			t.Fatalf("flaky ran at %v, want 3 times, the last at 04:20", got)
		}
		if n := len(al.of(AlertEscalation)); n != 0 {
			t.Errorf("%d escalations after a successful retry", n)
		}
		if cp := readCheckpoint(t, s); cp.State != cpDone || cp.Kind != KindRetry {
			t.Errorf("checkpoint %s %s", cp.Kind, cp.State)
		}
	})
}

func TestRetriesNeverOverlapTheNextWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		var al alerts
		s := newTest(t, Config{Schedule: "0 * * * *"}, &al) // hourly
		mustRegister(t, s, r.phase("bad", 20*time.Minute, PhaseResult{}, errBoom))
		stop := startRun(t, s)
		time.Sleep(day(1, 1, 59).Sub(time.Now()))
		stop()
		// 01:00 fails; retry 1 at 01:05 (+20 min budget ends 01:25 < 02:00);
		// retry 2 would start at 01:20 and could run to 01:40: fits; retry 3
		// at 02:20 would cross the 02:00 window: escalate at 01:20.
		want := []time.Time{day(1, 1, 0), day(1, 1, 5), day(1, 1, 20)}
		got := r.get("bad")
		if len(got) != len(want) {
			t.Fatalf("bad ran at %v, want %v", got, want)
		}
		esc := al.of(AlertEscalation)
		if len(esc) != 1 || !strings.Contains(esc[0].Message, "retry 3 of 3 would not finish before the next window at 2000-01-01T02:00:00Z") {
			t.Fatalf("escalations = %+v", esc)
		}
	})
}

func TestMissedWindowsRaiseAnAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		var al alerts
		dir := t.TempDir()
		s := newTest(t, Config{StateDir: dir}, &al)
		mustRegister(t, s, r.phase("p", time.Minute, did(1), nil))
		stop := startRun(t, s)
		time.Sleep(time.Hour)
		stop()
		// The daemon is down for three nights and comes back at 04:30 on
		// the 4th: the 1st to 3rd are missed, the 4th still runs (30 min
		// late, within the 1 h grace).
		time.Sleep(day(4, 4, 30).Sub(time.Now()))
		s2 := newTest(t, Config{StateDir: dir}, &al)
		mustRegister(t, s2, r.phase("p", time.Minute, did(1), nil))
		stop = startRun(t, s2)
		time.Sleep(time.Hour)
		stop()
		missed := al.of(AlertMissedWindow)
		if len(missed) != 1 || !strings.Contains(missed[0].Message, "3 scheduled dream window(s)") || !strings.Contains(missed[0].Message, "2000-01-03T04:00:00Z") {
			t.Fatalf("missed alerts = %+v", missed)
		}
		if got := r.get("p"); len(got) != 1 || !got[0].Equal(day(4, 4, 30)) {
			t.Errorf("ran at %v, want once at 04:30 on the 4th", got)
		}
		ld, _ := s2.loadLedger()
		if ld.Missed != 3 || !ld.LastWindow.Equal(day(4, 4, 0)) {
			t.Errorf("ledger = %+v", ld)
		}
	})
}

func TestWindowWaitsForABusyLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		dir := t.TempDir()
		s := newTest(t, Config{StateDir: dir}, nil)
		mustRegister(t, s, r.phase("p", time.Minute, did(1), nil))
		op := newTest(t, Config{StateDir: dir}, nil)
		mustRegister(t, op, Phase{Name: "long", Timeout: time.Hour, Run: func(ctx context.Context) (PhaseResult, error) {
			time.Sleep(25 * time.Minute)
			return did(1), nil
		}})
		stop := startRun(t, s)
		time.Sleep(day(1, 3, 50).Sub(time.Now()))
		if _, err := op.RunNow(t.Context(), "operator at 03:50"); err != nil { // holds the lock until 04:15
			t.Fatal(err)
		}
		time.Sleep(day(1, 6, 0).Sub(time.Now()))
		stop()
		// The lock is polled once a minute: 04:15 or 04:16.
		if got := r.get("p"); len(got) != 1 || got[0].Before(day(1, 4, 15)) || got[0].After(day(1, 4, 16)) {
			t.Fatalf("window ran at %v, want once within a minute of 04:15, when the lock came free", got)
		}
	})
}

func TestIdlePhaseAlertAfterSevenNights(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		var al alerts
		s := newTest(t, Config{}, &al)
		mustRegister(t, s,
			r.phase("idle", time.Minute, PhaseResult{Counters: map[string]int64{"deleted": 0}}, nil),
			r.phase("busy", time.Minute, did(7), nil),
			r.phase("nothing_to_do", time.Minute, PhaseResult{Skipped: "under the trigger"}, nil),
		)
		stop := startRun(t, s)
		time.Sleep(day(7, 3, 0).Sub(time.Now()))
		if n := len(al.of(AlertIdlePhase)); n != 0 {
			t.Fatalf("%d idle alerts after 6 nights", n)
		}
		time.Sleep(day(9, 5, 0).Sub(time.Now()))
		stop()
		idle := al.of(AlertIdlePhase)
		if len(idle) != 1 || idle[0].Phase != "idle" || !idle[0].Time.Equal(day(7, 4, 0)) || !strings.Contains(idle[0].Message, "7 scheduled cycles in a row") {
			t.Fatalf("idle alerts = %+v, want one for idle on the 7th night", idle)
		}
	})
}

func TestWindowMissedWhenTheLockStaysBusyPastTheGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		var al alerts
		dir := t.TempDir()
		s := newTest(t, Config{StateDir: dir, StartGrace: 10 * time.Minute}, &al)
		mustRegister(t, s, r.phase("p", time.Minute, did(1), nil))
		op := newTest(t, Config{StateDir: dir}, nil)
		mustRegister(t, op, Phase{Name: "long", Timeout: time.Hour, Run: func(ctx context.Context) (PhaseResult, error) {
			time.Sleep(25 * time.Minute)
			return did(1), nil
		}})
		stop := startRun(t, s)
		time.Sleep(day(1, 3, 55).Sub(time.Now()))
		if _, err := op.RunNow(t.Context(), ""); err != nil { // busy until 04:20
			t.Fatal(err)
		}
		time.Sleep(day(1, 6, 0).Sub(time.Now()))
		stop()
		if got := r.get("p"); len(got) != 0 {
			t.Fatalf("window ran at %v, more than the 10 min grace late", got)
		}
		if m := al.of(AlertMissedWindow); len(m) != 1 || !strings.Contains(m[0].Message, "1 scheduled dream window(s)") {
			t.Fatalf("missed alerts = %+v", m)
		}
	})
}

func TestNoRetriesMeansImmediateEscalation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var al alerts
		var r runs
		s := newTest(t, Config{RetryBackoff: []time.Duration{}}, &al)
		mustRegister(t, s, r.phase("bad", time.Minute, PhaseResult{}, errBoom))
		rep, err := s.RunNow(t.Context(), "")
		if err != nil {
			t.Fatal(err)
		}
		if len(al.of(AlertEscalation)) != 1 || !strings.HasPrefix(rep.Next, "escalation: still failing after 0 retries") {
			t.Fatalf("next %q, alerts %+v", rep.Next, al.list)
		}
		if n := len(files(t, s.path(escalationsDir), "*.json")); n != 1 {
			t.Errorf("%d escalation files", n)
		}
	})
}

func TestRetryDueWhileDownRunsAtStart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r runs
		dir := t.TempDir()
		fail := true
		phase := func() Phase {
			return Phase{Name: "flaky", Timeout: time.Minute, Run: func(context.Context) (PhaseResult, error) {
				r.add("flaky")
				if fail {
					return PhaseResult{}, errBoom
				}
				return did(1), nil
			}}
		}
		s := newTest(t, Config{StateDir: dir}, nil)
		mustRegister(t, s, phase())
		stop := startRun(t, s)
		time.Sleep(day(1, 4, 1).Sub(time.Now())) // failed at 04:00, retry due 04:05
		stop()
		fail = false
		time.Sleep(day(1, 4, 30).Sub(time.Now())) // down until 04:30
		s2 := newTest(t, Config{StateDir: dir}, nil)
		mustRegister(t, s2, phase())
		stop = startRun(t, s2)
		time.Sleep(time.Minute)
		stop()
		if got := r.get("flaky"); len(got) != 2 || !got[1].Equal(day(1, 4, 30)) {
			t.Fatalf("flaky ran at %v, want 04:00 and the overdue retry at 04:30", got)
		}
		if cp := readCheckpoint(t, s2); cp.State != cpDone {
			t.Errorf("state %s", cp.State)
		}
	})
}
