package quarantinetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/quarantine"
)

// NewStoreFunc opens a fresh, empty store for one subtest.
type NewStoreFunc func(t *testing.T) quarantine.Store

// SampleRecord returns a pending record of skill id whose fields are all
// set (the hash derived from id, version and n), for store tests.
func SampleRecord(id, version string, n int) quarantine.Record {
	at := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC).Add(time.Duration(n) * time.Minute)
	h := fmt.Sprintf("%064x", n+1)
	return quarantine.Record{
		Key:       quarantine.Key{ID: id, Version: version, Hash: h},
		State:     quarantine.StatePending,
		Language:  quarantine.LanguagePython,
		Entry:     "main.py",
		Source:    quarantine.Source{Type: quarantine.SourceUser, Origin: "user:alice"},
		Path:      "/skills/quarantine/" + id + "-" + version + "-" + h[:16],
		SizeBytes: 1234,
		CreatedAt: at,
		UpdatedAt: at,
		Scan:      quarantine.ScanNotRun,
	}
}

func added(rec quarantine.Record) quarantine.AuditEntry {
	return quarantine.AuditEntry{Actor: "user:alice", Event: "added", To: rec.State, Reason: "conformance"}
}

// RunStore runs the conformance suite every quarantine.Store must pass.
func RunStore(t *testing.T, newStore NewStoreFunc) {
	ctx := context.Background()

	t.Run("CreateGetRoundTrip", func(t *testing.T) {
		s := newStore(t)
		in := SampleRecord("weather", "1.0.0", 1)
		in.ActivePath = "/skills/active/weather-1.0.0"
		in.ScannedAt = in.CreatedAt.Add(time.Second)
		in.Scan = quarantine.ScanPassed
		in.CleanRuns, in.FailedRuns = 3, 1
		in.LastFailureAt = in.CreatedAt.Add(time.Hour)
		in.Approval = &quarantine.Approval{
			RequestedAt: in.CreatedAt.Add(25 * time.Hour), ExpiresAt: in.CreatedAt.Add(49 * time.Hour),
			RequestedBy: "user:bob", CodeHash: strings.Repeat("ab", 32), Attempts: 2, Status: quarantine.ApprovalPending,
		}
		if err := s.Create(ctx, in, added(in)); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, in.Key)
		if err != nil {
			t.Fatal(err)
		}
		assertRecord(t, got, in)
		plain := SampleRecord("plain", "1.0.0", 2)
		if err := s.Create(ctx, plain, added(plain)); err != nil {
			t.Fatal(err)
		}
		got, _ = s.Get(ctx, plain.Key)
		assertRecord(t, got, plain)
		if got.Approval != nil || !got.ScannedAt.IsZero() || !got.LastFailureAt.IsZero() {
			t.Fatalf("unset fields came back set: %+v", got)
		}
	})

	t.Run("CreateTwiceFailsAndChangesNothing", func(t *testing.T) {
		s := newStore(t)
		in := SampleRecord("weather", "1.0.0", 1)
		if err := s.Create(ctx, in, added(in)); err != nil {
			t.Fatal(err)
		}
		again := in
		again.State = quarantine.StatePromoted
		err := s.Create(ctx, again, added(again))
		if !errors.Is(err, quarantine.ErrExists) {
			t.Fatalf("second Create: %v, want ErrExists", err)
		}
		got, _ := s.Get(ctx, in.Key)
		if got.State != quarantine.StatePending {
			t.Fatalf("second Create changed the state to %s", got.State)
		}
		if es, _ := s.Audit(ctx, in.Key); len(es) != 1 {
			t.Fatalf("%d audit entries, want 1", len(es))
		}
	})

	t.Run("ConcurrentCreateOfOneKey", func(t *testing.T) {
		s := newStore(t)
		in := SampleRecord("weather", "1.0.0", 1)
		const n = 6
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.Create(ctx, in, added(in))
			}()
		}
		wg.Wait()
		created := 0
		for _, err := range errs {
			switch {
			case err == nil:
				created++
			case !errors.Is(err, quarantine.ErrExists):
				t.Fatalf("concurrent Create: %v, want nil or ErrExists", err)
			}
		}
		if created != 1 {
			t.Fatalf("%d concurrent Creates of one key succeeded, want 1", created)
		}
		if es, _ := s.Audit(ctx, in.Key); len(es) != 1 {
			t.Fatalf("%d audit entries, want 1", len(es))
		}
	})

	t.Run("KeyIsIDVersionAndHash", func(t *testing.T) {
		s := newStore(t)
		a := SampleRecord("weather", "1.0.0", 1)
		b := SampleRecord("weather", "1.0.0", 2) // same id and version, other content
		c := SampleRecord("weather", "1.0.1", 1) // same content, other version
		for _, r := range []quarantine.Record{a, b, c} {
			if err := s.Create(ctx, r, added(r)); err != nil {
				t.Fatalf("Create %s: %v", r.Key, err)
			}
		}
		if _, err := s.Update(ctx, b.Key, func(r *quarantine.Record) (quarantine.AuditEntry, error) {
			r.State = quarantine.StateFailed
			return quarantine.AuditEntry{Actor: "system", Event: "fail", From: quarantine.StatePending, To: r.State}, nil
		}); err != nil {
			t.Fatal(err)
		}
		for _, r := range []quarantine.Record{a, c} {
			if got, _ := s.Get(ctx, r.Key); got.State != quarantine.StatePending {
				t.Fatalf("%s changed with its sibling: %s", r.Key, got.State)
			}
		}
	})

	t.Run("GetUnknown", func(t *testing.T) {
		s := newStore(t)
		_, err := s.Get(ctx, quarantine.Key{ID: "nope", Version: "1.0.0", Hash: strings.Repeat("0", 64)})
		if !errors.Is(err, quarantine.ErrNotFound) {
			t.Fatalf("Get unknown: %v, want ErrNotFound", err)
		}
		_, err = s.Update(ctx, quarantine.Key{ID: "nope"}, func(*quarantine.Record) (quarantine.AuditEntry, error) {
			t.Error("fn called for an unknown key")
			return quarantine.AuditEntry{}, nil
		})
		if !errors.Is(err, quarantine.ErrNotFound) {
			t.Fatalf("Update unknown: %v, want ErrNotFound", err)
		}
	})

	t.Run("ListFiltersAndOrders", func(t *testing.T) {
		s := newStore(t)
		recs := []quarantine.Record{
			SampleRecord("beta", "1.0.0", 3), SampleRecord("alpha", "1.0.0", 1),
			SampleRecord("alpha", "2.0.0", 2), SampleRecord("gamma", "1.0.0", 2),
		}
		recs[2].State = quarantine.StatePassed
		// Two records one half-second apart, the first on a whole second:
		// a store that sorts times as text without fixed-width fractions
		// gets these backwards.
		whole := SampleRecord("delta", "1.0.0", 10)
		whole.CreatedAt = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
		half := SampleRecord("delta", "1.0.1", 11)
		half.CreatedAt = whole.CreatedAt.Add(500 * time.Millisecond)
		recs = append(recs, half, whole)
		for _, r := range recs {
			if err := s.Create(ctx, r, added(r)); err != nil {
				t.Fatal(err)
			}
		}
		all, err := s.List(ctx, quarantine.Filter{})
		if err != nil {
			t.Fatal(err)
		}
		if got := keys(all); got != "alpha@1.0.0 alpha@2.0.0 gamma@1.0.0 beta@1.0.0 delta@1.0.0 delta@1.0.1" {
			t.Fatalf("List order: %s", got)
		}
		byID, _ := s.List(ctx, quarantine.Filter{ID: "alpha"})
		if got := keys(byID); got != "alpha@1.0.0 alpha@2.0.0" {
			t.Fatalf("List by id: %s", got)
		}
		byState, _ := s.List(ctx, quarantine.Filter{State: quarantine.StatePassed})
		if got := keys(byState); got != "alpha@2.0.0" {
			t.Fatalf("List by state: %s", got)
		}
		none, err := s.List(ctx, quarantine.Filter{ID: "zeta"})
		if err != nil || len(none) != 0 {
			t.Fatalf("List of nothing: %v %v", none, err)
		}
	})

	t.Run("UpdateWritesAndAudits", func(t *testing.T) {
		s := newStore(t)
		in := SampleRecord("weather", "1.0.0", 1)
		if err := s.Create(ctx, in, added(in)); err != nil {
			t.Fatal(err)
		}
		later := in.UpdatedAt.Add(time.Hour)
		got, err := s.Update(ctx, in.Key, func(r *quarantine.Record) (quarantine.AuditEntry, error) {
			r.State = quarantine.StateExecuting
			r.UpdatedAt = later
			r.Scan, r.ScannedAt = quarantine.ScanPassed, later
			r.Approval = &quarantine.Approval{RequestedAt: later, ExpiresAt: later.Add(24 * time.Hour), RequestedBy: "u", CodeHash: "h", Status: quarantine.ApprovalPending}
			return quarantine.AuditEntry{Actor: "sandbox", Event: "start_run", From: quarantine.StatePending, To: r.State, Reason: "run 1 of 3"}, nil
		})
		if err != nil {
			t.Fatal(err)
		}
		stored, _ := s.Get(ctx, in.Key)
		assertRecord(t, stored, got)
		if stored.State != quarantine.StateExecuting || stored.Approval == nil || stored.Approval.RequestedBy != "u" {
			t.Fatalf("update not stored: %+v", stored)
		}
		// An error from fn writes nothing.
		boom := errors.New("boom")
		_, err = s.Update(ctx, in.Key, func(r *quarantine.Record) (quarantine.AuditEntry, error) {
			r.State = quarantine.StateFailed
			return quarantine.AuditEntry{Actor: "x", Event: "fail"}, boom
		})
		if !errors.Is(err, boom) {
			t.Fatalf("Update returned %v, want fn's error", err)
		}
		if again, _ := s.Get(ctx, in.Key); again.State != quarantine.StateExecuting {
			t.Fatalf("a failed Update wrote state %s", again.State)
		}
		es, err := s.Audit(ctx, in.Key)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 2 {
			t.Fatalf("%d audit entries, want 2: %+v", len(es), es)
		}
		e := es[1]
		if e.Actor != "sandbox" || e.Event != "start_run" || e.From != quarantine.StatePending || e.To != quarantine.StateExecuting || e.Reason != "run 1 of 3" || e.Key != in.Key || e.Seq <= es[0].Seq || e.Time.IsZero() {
			t.Fatalf("audit entry %+v", e)
		}
		head, err := s.Verify(ctx)
		if err != nil || head.Entries != 2 || len(head.Hash) != 64 {
			t.Fatalf("Verify = %+v, %v", head, err)
		}
	})

	t.Run("ConcurrentUpdatesLoseNothing", func(t *testing.T) {
		s := newStore(t)
		in := SampleRecord("counter", "1.0.0", 1)
		other := SampleRecord("other", "1.0.0", 2)
		for _, r := range []quarantine.Record{in, other} {
			if err := s.Create(ctx, r, added(r)); err != nil {
				t.Fatal(err)
			}
		}
		const n = 12
		var wg sync.WaitGroup
		errs := make(chan error, 2*n)
		for i := 0; i < n; i++ {
			for _, k := range []quarantine.Key{in.Key, other.Key} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.Update(ctx, k, func(r *quarantine.Record) (quarantine.AuditEntry, error) {
						r.CleanRuns++
						return quarantine.AuditEntry{Actor: "sandbox", Event: "run_passed", From: r.State, To: r.State, Reason: fmt.Sprint("run ", r.CleanRuns)}, nil
					})
					errs <- err
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range []quarantine.Key{in.Key, other.Key} {
			got, _ := s.Get(ctx, k)
			if got.CleanRuns != n {
				t.Fatalf("%s: %d clean runs after %d concurrent increments", k, got.CleanRuns, n)
			}
			es, _ := s.Audit(ctx, k)
			if len(es) != n+1 {
				t.Fatalf("%s: %d audit entries, want %d", k, len(es), n+1)
			}
		}
		head, err := s.Verify(ctx)
		if err != nil || head.Entries != 2*n+2 {
			t.Fatalf("Verify = %+v, %v; want %d entries", head, err, 2*n+2)
		}
	})

	t.Run("EmptyChainVerifies", func(t *testing.T) {
		s := newStore(t)
		head, err := s.Verify(ctx)
		if err != nil || head.Entries != 0 {
			t.Fatalf("Verify of an empty store = %+v, %v", head, err)
		}
	})

	t.Run("CanceledContext", func(t *testing.T) {
		s := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		in := SampleRecord("weather", "1.0.0", 1)
		if err := s.Create(cctx, in, added(in)); err == nil {
			t.Fatal("Create with a canceled context succeeded")
		}
		if _, err := s.Get(ctx, in.Key); !errors.Is(err, quarantine.ErrNotFound) {
			t.Fatalf("a canceled Create left a record: %v", err)
		}
	})
}

func keys(rs []quarantine.Record) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.ID+"@"+r.Version)
	}
	return strings.Join(s, " ")
}

func assertRecord(t *testing.T, got, want quarantine.Record) {
	t.Helper()
	norm := func(r quarantine.Record) quarantine.Record {
		r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
		r.ScannedAt, r.LastFailureAt = r.ScannedAt.UTC(), r.LastFailureAt.UTC()
		if r.Approval != nil {
			a := *r.Approval
			a.RequestedAt, a.ExpiresAt, a.DecidedAt = a.RequestedAt.UTC(), a.ExpiresAt.UTC(), a.DecidedAt.UTC()
			r.Approval = &a
		}
		return r
	}
	g, w := norm(got), norm(want)
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("record differs:\n got %+v %+v\nwant %+v %+v", g, g.Approval, w, w.Approval)
	}
}
