package quarantine_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
)

type capture struct {
	mu      sync.Mutex
	notices []quarantine.Notice
	fail    error
}

func (c *capture) Notify(ctx context.Context, n quarantine.Notice) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return c.fail
	}
	c.notices = append(c.notices, n)
	return nil
}

func (c *capture) Name() string { return "capture" }

func (c *capture) last(t *testing.T) quarantine.Notice {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.notices) == 0 {
		t.Fatal("no notice delivered")
	}
	return c.notices[len(c.notices)-1]
}

var codeKey = bytes.Repeat([]byte{3}, quarantine.MinCodeKeyLen)

type env struct {
	t     *testing.T
	ctx   context.Context
	m     *quarantine.Manager
	store *quarantinetest.Store
	note  *capture
	root  string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), store: quarantinetest.NewStore(), note: &capture{}, root: t.TempDir()}
	m, err := quarantine.New(quarantine.Config{Dir: filepath.Join(e.root, "skills"), CodeKey: codeKey}, e.store, e.note)
	if err != nil {
		t.Fatal(err)
	}
	e.m = m
	return e
}

const helloManifest = "id: hello_world\nversion: %s\nlanguage: python\nentry: main.py\n"

// skill writes a skill folder and returns its path.
func (e *env) skill(version, code string) string {
	e.t.Helper()
	dir, err := os.MkdirTemp(e.root, "src-")
	if err != nil {
		e.t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(fmt.Sprintf(helloManifest, version)), 0o644)
	os.WriteFile(filepath.Join(dir, "main.py"), []byte(code), 0o644)
	return dir
}

func (e *env) add(src string) quarantine.Record {
	e.t.Helper()
	rec, err := e.m.Add(e.ctx, src, quarantine.Source{Type: quarantine.SourceUser, Origin: "user:alice"}, "user:alice")
	if err != nil {
		e.t.Fatal(err)
	}
	return rec
}

// ready adds a skill, scans it and runs it cleanly n times.
func (e *env) ready(src string, n int) quarantine.Record {
	e.t.Helper()
	rec := e.add(src)
	if _, _, err := e.m.Scan(e.ctx, rec.Key, "system"); err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := e.m.StartRun(e.ctx, rec.Key, "sandbox"); err != nil {
			e.t.Fatal(err)
		}
		if _, err := e.m.FinishRun(e.ctx, rec.Key, "sandbox", quarantine.RunResult{Passed: true, Reason: "exit 0"}); err != nil {
			e.t.Fatal(err)
		}
	}
	got, _ := e.m.Get(e.ctx, rec.Key)
	return got
}

func (e *env) state(k quarantine.Key) quarantine.State {
	e.t.Helper()
	r, err := e.m.Get(e.ctx, k)
	if err != nil {
		e.t.Fatal(err)
	}
	return r.State
}

func wrongCode(code string) string {
	if code == "000000" {
		return "000001"
	}
	return "000000"
}

func TestLifecycleToPromotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		rec := e.ready(e.skill("1.0.0", "print('hello')\n"), 3)
		if rec.State != quarantine.StatePassed || rec.CleanRuns != 3 {
			t.Fatalf("after 3 runs: %+v", rec)
		}
		if man, err := e.m.Manifest(e.ctx, rec.Key); err != nil || man.ID != "hello_world" || man.Entry != rec.Entry {
			t.Fatalf("Manifest: %+v %v", man, err)
		}
		// Too young: the 24 h minimum age blocks it, and says until when.
		_, err := e.m.RequestPromotion(e.ctx, rec.Key, "user:alice")
		if !errors.Is(err, talos.ErrPolicyDenied) || !strings.Contains(err.Error(), "want at least 24h0m0s") {
			t.Fatalf("request at age 0: %v", err)
		}
		time.Sleep(24*time.Hour - time.Second)
		if el, _ := e.m.Eligibility(e.ctx, rec.Key); el.Eligible() {
			t.Fatal("eligible one second before 24 h")
		}
		time.Sleep(time.Second)
		el, err := e.m.Eligibility(e.ctx, rec.Key)
		if err != nil || !el.Eligible() || !el.HashMatches {
			t.Fatalf("eligibility at 24 h: %+v %v", el, err)
		}
		req, err := e.m.RequestPromotion(e.ctx, rec.Key, "user:alice")
		if err != nil {
			t.Fatal(err)
		}
		n := e.note.last(t)
		if len(n.Code) != 6 || strings.Trim(n.Code, "0123456789") != "" {
			t.Fatalf("code %q", n.Code)
		}
		// The requester never sees the code; the store holds only its hash.
		if strings.Contains(fmt.Sprintf("%+v", req), n.Code) {
			t.Fatalf("the request carries the code: %+v", req)
		}
		stored, _ := e.m.Get(e.ctx, rec.Key)
		if stored.State != quarantine.StateAwaitingPromotion || stored.Approval == nil || strings.Contains(fmt.Sprintf("%+v", *stored.Approval), n.Code) || len(stored.Approval.CodeHash) != 64 {
			t.Fatalf("stored request: %+v %+v", stored, stored.Approval)
		}
		if !req.ExpiresAt.Equal(req.RequestedAt.Add(24 * time.Hour)) {
			t.Fatalf("expiry %v for request at %v", req.ExpiresAt, req.RequestedAt)
		}
		// One wrong code first.
		if _, err := e.m.Approve(e.ctx, rec.Key, wrongCode(n.Code), "user:alice"); !errors.Is(err, talos.ErrUnauthorized) || !strings.Contains(err.Error(), "4 tries left") {
			t.Fatalf("wrong code: %v", err)
		}
		got, err := e.m.Approve(e.ctx, rec.Key, n.Code, "user:alice")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != quarantine.StatePromoted || got.ActivePath != e.m.ActivePath(rec.Key) {
			t.Fatalf("after approval: %+v", got)
		}
		if c, err := quarantine.HashDir(got.ActivePath); err != nil || c.Hash != rec.Hash {
			t.Fatalf("active copy: %v %v", c.Hash, err)
		}
		if filepath.Base(got.ActivePath) != "hello_world-1.0.0" {
			t.Fatalf("active path %s", got.ActivePath)
		}
		// Approving again changes nothing.
		again, err := e.m.Approve(e.ctx, rec.Key, n.Code, "user:alice")
		if err != nil || again.State != quarantine.StatePromoted {
			t.Fatalf("second approval: %+v %v", again, err)
		}
		es, _ := e.m.Audit(e.ctx, rec.Key)
		var events []string
		for _, a := range es {
			events = append(events, a.Event)
			if a.Actor == "" {
				t.Errorf("audit entry without actor: %+v", a)
			}
		}
		want := "added scanned start_run run_passed start_run run_passed start_run run_passed request_promotion code_wrong code_accepted approve"
		if got := strings.Join(events, " "); got != want {
			t.Fatalf("audit trail:\n got %s\nwant %s", got, want)
		}
		if _, err := e.m.Verify(e.ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func TestApprovalExpiresAfter24Hours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		a := e.ready(e.skill("1.0.0", "print(1)\n"), 3)
		b := e.ready(e.skill("1.0.1", "print(1)\n"), 3)
		time.Sleep(24 * time.Hour)
		for _, r := range []quarantine.Record{a, b} {
			if _, err := e.m.RequestPromotion(e.ctx, r.Key, "user:alice"); err != nil {
				t.Fatal(err)
			}
		}
		codeA := e.note.notices[0].Code
		time.Sleep(24*time.Hour - time.Nanosecond)
		if n, err := e.m.ExpireApprovals(e.ctx); n != 0 || err != nil {
			t.Fatalf("expired %d before 24 h: %v", n, err)
		}
		time.Sleep(time.Nanosecond)
		// Approve checks expiry itself, even with the right code.
		_, err := e.m.Approve(e.ctx, a.Key, codeA, "user:alice")
		if err == nil || !strings.Contains(err.Error(), "expired") {
			t.Fatalf("approval at 24 h: %v", err)
		}
		if s := e.state(a.Key); s != quarantine.StateRejected {
			t.Fatalf("expired request left %s", s)
		}
		// The sweep rejects the other one.
		if n, err := e.m.ExpireApprovals(e.ctx); n != 1 || err != nil {
			t.Fatalf("ExpireApprovals = %d, %v", n, err)
		}
		if r, _ := e.m.Get(e.ctx, b.Key); r.State != quarantine.StateRejected || r.Approval.Status != quarantine.ApprovalExpired {
			t.Fatalf("after sweep: %+v %+v", r, r.Approval)
		}
		if _, err := os.Stat(e.m.ActivePath(a.Key)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("an expired skill reached active")
		}
	})
}

func TestFiveWrongCodesReject(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		rec := e.ready(e.skill("1.0.0", "print(1)\n"), 3)
		time.Sleep(25 * time.Hour)
		if _, err := e.m.RequestPromotion(e.ctx, rec.Key, "user:alice"); err != nil {
			t.Fatal(err)
		}
		code := e.note.last(t).Code
		for i, guess := range []string{"12345", "abcdef", wrongCode(code), wrongCode(code), wrongCode(code)} {
			_, err := e.m.Approve(e.ctx, rec.Key, guess, "user:mallory")
			if !errors.Is(err, talos.ErrUnauthorized) {
				t.Fatalf("guess %d: %v", i+1, err)
			}
		}
		if s := e.state(rec.Key); s != quarantine.StateRejected {
			t.Fatalf("after 5 wrong codes: %s", s)
		}
		if _, err := e.m.Approve(e.ctx, rec.Key, code, "user:alice"); err == nil {
			t.Fatal("the right code worked after 5 wrong ones")
		}
		if _, err := os.Stat(e.m.ActivePath(rec.Key)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("a locked request reached active")
		}
	})
}

func TestEditedSkillIsRefusedAtRunAndAtPromotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		// At run time.
		rec := e.ready(e.skill("1.0.0", "print(1)\n"), 1)
		os.WriteFile(filepath.Join(rec.Path, "main.py"), []byte("print(2)\n"), 0o600)
		if _, err := e.m.Manifest(e.ctx, rec.Key); !errors.Is(err, talos.ErrBadSignature) {
			t.Fatalf("manifest of an edited skill: %v", err)
		}
		if _, err := e.m.StartRun(e.ctx, rec.Key, "sandbox"); !errors.Is(err, talos.ErrBadSignature) {
			t.Fatalf("run of an edited skill: %v", err)
		}
		if s := e.state(rec.Key); s != quarantine.StateFailed {
			t.Fatalf("edited skill left %s", s)
		}
		// At promotion, one byte changed after the code was sent.
		rec2 := e.ready(e.skill("2.0.0", "print(1)\n"), 3)
		time.Sleep(24 * time.Hour)
		if _, err := e.m.RequestPromotion(e.ctx, rec2.Key, "user:alice"); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(rec2.Path, "main.py"), []byte("print(1)\r"), 0o600)
		_, err := e.m.Approve(e.ctx, rec2.Key, e.note.last(t).Code, "user:alice")
		if !errors.Is(err, talos.ErrBadSignature) {
			t.Fatalf("approval of an edited skill: %v", err)
		}
		if s := e.state(rec2.Key); s != quarantine.StateRejected {
			t.Fatalf("edited skill left %s", s)
		}
		if _, err := os.Stat(e.m.ActivePath(rec2.Key)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("an edited skill reached active")
		}
	})
}

func TestNewContentOrVersionStartsOverAndReimportChangesNothing(t *testing.T) {
	e := newEnv(t)
	src := e.skill("1.0.0", "print(1)\n")
	rec := e.ready(src, 2)
	// The same folder again, or a moved copy of it: the same record.
	moved := filepath.Join(e.root, "moved")
	os.Rename(src, moved)
	again := e.add(moved)
	if again.Key != rec.Key || again.State != quarantine.StatePassed || again.CleanRuns != 2 {
		t.Fatalf("re-import: %+v", again)
	}
	// One byte changed: a new record at pending, nothing inherited.
	os.WriteFile(filepath.Join(moved, "main.py"), []byte("print(1) \n"), 0o644)
	edited := e.add(moved)
	if edited.Key == rec.Key || edited.State != quarantine.StatePending || edited.CleanRuns != 0 || edited.Scan != quarantine.ScanNotRun {
		t.Fatalf("edited content: %+v", edited)
	}
	// A new version of the same code: also new.
	bumped := e.add(e.skill("1.0.1", "print(1)\n"))
	if bumped.Hash == rec.Hash || bumped.State != quarantine.StatePending || bumped.CleanRuns != 0 {
		t.Fatalf("new version: %+v", bumped)
	}
	all, _ := e.m.List(e.ctx, quarantine.Filter{ID: "hello_world"})
	if len(all) != 3 {
		t.Fatalf("%d records, want 3", len(all))
	}
}

func TestEachEligibilityCheckBlocks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		few := e.ready(e.skill("1.0.0", "print(1)\n"), 2)
		failedLately := e.ready(e.skill("1.0.1", "print(1)\n"), 3)
		tampered := e.ready(e.skill("1.0.2", "print(1)\n"), 3)
		good := e.ready(e.skill("1.0.3", "print(1)\n"), 3)
		unscanned := e.add(e.skill("1.0.4", "print(1)\n"))
		// A failure recorded 1 h ago (for example a record kept from before).
		e.store.Update(e.ctx, failedLately.Key, func(r *quarantine.Record) (quarantine.AuditEntry, error) {
			r.LastFailureAt = time.Now().Add(23 * time.Hour)
			return quarantine.AuditEntry{Actor: "test", Event: "test"}, nil
		})
		time.Sleep(24 * time.Hour)
		os.WriteFile(filepath.Join(tampered.Path, "extra.py"), nil, 0o600)
		for _, tc := range []struct {
			k    quarantine.Key
			want string
		}{
			{few.Key, "2 clean run(s), want 3"},
			{failedLately.Key, "a run failed at"},
			{tampered.Key, "files changed"},
			{unscanned.Key, "scan not_run, want passed"},
		} {
			el, err := e.m.Eligibility(e.ctx, tc.k)
			if err != nil {
				t.Fatal(err)
			}
			if el.Eligible() || len(el.Problems) == 0 || !strings.Contains(strings.Join(el.Problems, "; "), tc.want) {
				t.Errorf("%s: problems %q, want %q", tc.k, el.Problems, tc.want)
			}
			if _, err := e.m.RequestPromotion(e.ctx, tc.k, "user:alice"); !errors.Is(err, talos.ErrPolicyDenied) {
				t.Errorf("%s: request: %v", tc.k, err)
			}
		}
		if el, _ := e.m.Eligibility(e.ctx, good.Key); !el.Eligible() {
			t.Fatalf("good skill not eligible: %v", el.Problems)
		}
		if len(e.note.notices) != 0 {
			t.Fatalf("codes sent for ineligible skills: %d", len(e.note.notices))
		}
	})
}

func TestScanFailureFailsTheSkill(t *testing.T) {
	e := newEnv(t)
	rec := e.add(e.skill("1.0.0", "import subprocess\nsubprocess.run(['id'])\n"))
	rep, got, err := e.m.Scan(e.ctx, rec.Key, "system")
	if !errors.Is(err, talos.ErrSkillScanRejected) || !strings.Contains(err.Error(), "PROC-001 main.py:1") {
		t.Fatalf("scan: %v", err)
	}
	if rep.Passed() || got.State != quarantine.StateFailed || got.Scan != quarantine.ScanFailed {
		t.Fatalf("after a failed scan: %+v", got)
	}
	if _, err := e.m.StartRun(e.ctx, rec.Key, "sandbox"); err == nil {
		t.Fatal("a skill that failed its scan started a run")
	}
	// An unscanned skill does not run either.
	other := e.add(e.skill("1.0.1", "print(1)\n"))
	if _, err := e.m.StartRun(e.ctx, other.Key, "sandbox"); !errors.Is(err, talos.ErrSkillScanRejected) {
		t.Fatalf("run before scan: %v", err)
	}
}

func TestFailedRunAndInterruptedRun(t *testing.T) {
	e := newEnv(t)
	rec := e.ready(e.skill("1.0.0", "print(1)\n"), 1)
	e.m.StartRun(e.ctx, rec.Key, "sandbox")
	r, err := e.m.InterruptRun(e.ctx, rec.Key, "system", "daemon stopped")
	if err != nil || r.State != quarantine.StatePending || r.CleanRuns != 1 || r.FailedRuns != 0 {
		t.Fatalf("interrupt: %+v %v", r, err)
	}
	e.m.StartRun(e.ctx, rec.Key, "sandbox")
	r, err = e.m.FinishRun(e.ctx, rec.Key, "sandbox", quarantine.RunResult{Reason: "exit 1: ValueError"})
	if err != nil || r.State != quarantine.StateFailed || r.FailedRuns != 1 || r.LastFailureAt.IsZero() {
		t.Fatalf("failed run: %+v %v", r, err)
	}
	if _, err := e.m.StartRun(e.ctx, rec.Key, "sandbox"); !errors.Is(err, talos.ErrPolicyDenied) {
		t.Fatalf("run after failure: %v", err)
	}
}

func TestReconcileFinishesAnInterruptedPromotion(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		a := e.ready(e.skill("1.0.0", "print(1)\n"), 3)
		b := e.ready(e.skill("2.0.0", "print(2)\n"), 3)
		time.Sleep(24 * time.Hour)
		for _, r := range []quarantine.Record{a, b} {
			if _, err := e.m.RequestPromotion(e.ctx, r.Key, "user:alice"); err != nil {
				t.Fatal(err)
			}
		}
		// Crash after the code was accepted: a before the copy, b after
		// the rename into active.
		for _, r := range []quarantine.Record{a, b} {
			e.store.Update(e.ctx, r.Key, func(x *quarantine.Record) (quarantine.AuditEntry, error) {
				x.Approval.Status = quarantine.ApprovalApproved
				return quarantine.AuditEntry{Actor: "user:alice", Event: "code_accepted"}, nil
			})
		}
		activeB := e.m.ActivePath(b.Key)
		os.MkdirAll(activeB, 0o755)
		os.WriteFile(filepath.Join(activeB, "skill.yaml"), []byte(fmt.Sprintf(helloManifest, "2.0.0")), 0o644)
		os.WriteFile(filepath.Join(activeB, "main.py"), []byte("print(2)\n"), 0o644)
		// A run the crash cut short.
		c := e.ready(e.skill("3.0.0", "print(3)\n"), 1)
		if _, err := e.m.StartRun(e.ctx, c.Key, "sandbox"); err != nil {
			t.Fatal(err)
		}
		// And a half-written copy.
		half := filepath.Join(filepath.Dir(activeB), ".tmp-hello_world-1.0.0-123")
		os.MkdirAll(half, 0o755)

		rep, err := e.m.Reconcile(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Promoted) != 2 || len(rep.TempRemoved) != 1 || len(rep.ActiveChanged) != 0 || len(rep.Interrupted) != 1 || e.state(c.Key) != quarantine.StatePending {
			t.Fatalf("reconcile: %+v", rep)
		}
		for _, r := range []quarantine.Record{a, b} {
			if s := e.state(r.Key); s != quarantine.StatePromoted {
				t.Fatalf("%s: %s", r.Key, s)
			}
		}
		if _, err := os.Stat(half); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("half-written folder kept")
		}
		// A second reconcile has nothing to do; an edited active file is
		// reported.
		os.WriteFile(filepath.Join(activeB, "main.py"), []byte("print(3)\n"), 0o644)
		rep, err = e.m.Reconcile(e.ctx)
		if err != nil || len(rep.Promoted) != 0 || len(rep.ActiveChanged) != 1 || rep.ActiveChanged[0] != b.Key {
			t.Fatalf("second reconcile: %+v %v", rep, err)
		}
	})
}

// The nightly check of a running daemon leaves alone a run in progress
// and a folder being written; only what has been still for longer than
// the grace counts as left over by a crash.
func TestReconcileWhileRunningLeavesWorkInProgress(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		if _, err := e.m.ReconcileWhileRunning(e.ctx, 0); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Fatalf("grace 0: %v", err)
		}
		cut := e.ready(e.skill("1.0.0", "print(1)\n"), 1)
		if _, err := e.m.StartRun(e.ctx, cut.Key, "sandbox"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Hour)
		running := e.ready(e.skill("2.0.0", "print(2)\n"), 1)
		if _, err := e.m.StartRun(e.ctx, running.Key, "sandbox"); err != nil {
			t.Fatal(err)
		}
		active := filepath.Dir(e.m.ActivePath(cut.Key))
		left, writing := filepath.Join(active, ".tmp-left-1"), filepath.Join(active, ".tmp-writing-2")
		for _, d := range []string{left, writing} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		os.Chtimes(left, now.Add(-2*time.Hour), now.Add(-2*time.Hour))
		os.Chtimes(writing, now, now)

		rep, err := e.m.ReconcileWhileRunning(e.ctx, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Interrupted) != 1 || rep.Interrupted[0] != cut.Key || len(rep.TempRemoved) != 1 || rep.TempRemoved[0] != left {
			t.Fatalf("reconcile while running: %+v", rep)
		}
		if e.state(cut.Key) != quarantine.StatePending || e.state(running.Key) != quarantine.StateExecuting {
			t.Errorf("states: cut %s, running %s", e.state(cut.Key), e.state(running.Key))
		}
		if _, err := os.Stat(writing); err != nil {
			t.Errorf("the folder being written was removed: %v", err)
		}
	})
}

func TestDeprecateMovesActiveFilesOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		rec := e.ready(e.skill("1.0.0", "print(1)\n"), 3)
		time.Sleep(24 * time.Hour)
		e.m.RequestPromotion(e.ctx, rec.Key, "user:alice")
		p, err := e.m.Approve(e.ctx, rec.Key, e.note.last(t).Code, "user:alice")
		if err != nil {
			t.Fatal(err)
		}
		d, err := e.m.Deprecate(e.ctx, rec.Key, "strikes", "3 strikes")
		if err != nil || d.State != quarantine.StateDeprecated || d.ActivePath != "" {
			t.Fatalf("deprecate: %+v %v", d, err)
		}
		if _, err := os.Stat(p.ActivePath); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("active folder kept")
		}
		moved, _ := filepath.Glob(filepath.Join(e.root, "skills", "deprecated", "hello_world-1.0.0-*"))
		if len(moved) != 1 || strings.Contains(moved[0], ":") {
			t.Fatalf("deprecated folders %v", moved)
		}
		if _, err := e.m.Deprecate(e.ctx, rec.Key, "strikes", "again"); !errors.Is(err, talos.ErrPolicyDenied) {
			t.Fatalf("second deprecate: %v", err)
		}
	})
}

func TestOtherContentOfAPromotedVersionIsNotEligible(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		a := e.ready(e.skill("1.0.0", "print(1)\n"), 3)
		b := e.ready(e.skill("1.0.0", "print(2)\n"), 3)
		time.Sleep(24 * time.Hour)
		e.m.RequestPromotion(e.ctx, a.Key, "user:alice")
		if _, err := e.m.Approve(e.ctx, a.Key, e.note.last(t).Code, "user:alice"); err != nil {
			t.Fatal(err)
		}
		_, err := e.m.RequestPromotion(e.ctx, b.Key, "user:alice")
		if err == nil || !strings.Contains(err.Error(), "give the new content a new version") {
			t.Fatalf("second content of 1.0.0: %v", err)
		}
	})
}

func TestNotifierFailureChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		rec := e.ready(e.skill("1.0.0", "print(1)\n"), 3)
		time.Sleep(24 * time.Hour)
		e.note.fail = errors.New("speaker unplugged")
		if _, err := e.m.RequestPromotion(e.ctx, rec.Key, "user:alice"); err == nil || !strings.Contains(err.Error(), "speaker unplugged") {
			t.Fatalf("request: %v", err)
		}
		if s := e.state(rec.Key); s != quarantine.StatePassed {
			t.Fatalf("state %s after an undelivered code", s)
		}
		e.note.fail = nil
		if _, err := e.m.RequestPromotion(e.ctx, rec.Key, "user:alice"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestAddRefusesBadInput(t *testing.T) {
	e := newEnv(t)
	src := e.skill("1.0.0", "print(1)\n")
	if _, err := e.m.Add(e.ctx, src, quarantine.Source{Type: "alien", Origin: "x"}, "user:alice"); err == nil {
		t.Error("unknown source type accepted")
	}
	if _, err := e.m.Add(e.ctx, src, quarantine.Source{Type: quarantine.SourceLLM, Origin: "qwen"}, "bad\nactor"); err == nil {
		t.Error("actor with a newline accepted")
	}
	noEntry := t.TempDir()
	os.WriteFile(filepath.Join(noEntry, "skill.yaml"), []byte(fmt.Sprintf(helloManifest, "1.0.0")), 0o644)
	if _, err := e.m.Add(e.ctx, noEntry, quarantine.Source{Type: quarantine.SourceLLM, Origin: "qwen"}, "system"); err == nil || !strings.Contains(err.Error(), "not a file") {
		t.Errorf("missing entry: %v", err)
	}
	noManifest := t.TempDir()
	os.WriteFile(filepath.Join(noManifest, "main.py"), nil, 0o644)
	if _, err := e.m.Add(e.ctx, noManifest, quarantine.Source{Type: quarantine.SourceLLM, Origin: "qwen"}, "system"); !errors.Is(err, talos.ErrSkillSyntax) {
		t.Errorf("no manifest: %v", err)
	}
	os.Symlink("/etc/passwd", filepath.Join(src, "pw"))
	if _, err := e.m.Add(e.ctx, src, quarantine.Source{Type: quarantine.SourceLLM, Origin: "qwen"}, "system"); !errors.Is(err, talos.ErrSkillSandbox) {
		t.Errorf("symlink: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(e.root, "skills", "quarantine"))
	if len(entries) != 0 {
		t.Fatalf("refused adds left %v", entries)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	_, err := quarantine.New(quarantine.Config{Dir: "rel", CodeKey: []byte("k"), MinAge: -1, MaxCodeAttempts: 99}, nil, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"Dir \"rel\"", "CodeKey: 1 bytes", "MinAge", "MaxCodeAttempts 99", "store is nil", "notifier is nil"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
}

func TestConcurrentApprovalsPromoteOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		e := newEnv(t)
		rec := e.ready(e.skill("1.0.0", "print(1)\n"), 3)
		time.Sleep(24 * time.Hour)
		if _, err := e.m.RequestPromotion(e.ctx, rec.Key, "user:alice"); err != nil {
			t.Fatal(err)
		}
		code := e.note.last(t).Code
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() {
				r, err := e.m.Approve(e.ctx, rec.Key, code, "user:alice")
				if err == nil && r.State != quarantine.StatePromoted {
					err = fmt.Errorf("state %s", r.State)
				}
				errs[i] = err
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("approval %d: %v", i, err)
			}
		}
		es, _ := e.m.Audit(e.ctx, rec.Key)
		n := 0
		for _, a := range es {
			if a.Event == string(quarantine.EventApprove) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d approve entries, want 1", n)
		}
		entries, _ := os.ReadDir(filepath.Join(e.root, "skills", "active"))
		if len(entries) != 1 {
			t.Fatalf("active holds %v", entries)
		}
	})
}
