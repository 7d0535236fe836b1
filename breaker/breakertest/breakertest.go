package breakertest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/breaker"
)

// Run runs the conformance suite. newStore must return a store that is empty
// for the names the suite uses (each subtest asks for a fresh one and uses a
// name unique to the subtest).
func Run(t *testing.T, newStore func(t *testing.T) breaker.Store) {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	name := func(t *testing.T) string { return fmt.Sprintf("conf-%s-%d", t.Name(), time.Now().UnixNano()) }

	t.Run("LoadMissing", func(t *testing.T) {
		s := newStore(t)
		_, ok, err := s.Load(ctx, name(t))
		if err != nil || ok {
			t.Fatalf("Load of an unknown name = ok %v, err %v; want false, nil", ok, err)
		}
	})

	t.Run("SaveLoadRoundTrip", func(t *testing.T) {
		s, n := newStore(t), name(t)
		want := breaker.Record{State: breaker.Open, Until: base.Add(time.Hour), Step: 2, Updated: base}
		if err := s.Save(ctx, n, want); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.Load(ctx, n)
		if err != nil || !ok {
			t.Fatalf("Load = %v, %v", ok, err)
		}
		if got.State != want.State || !got.Until.Equal(want.Until) || got.Step != want.Step || !got.Updated.Equal(want.Updated) {
			t.Fatalf("Load = %+v, want %+v", got, want)
		}
	})

	t.Run("NewerRecordWins", func(t *testing.T) {
		s, n := newStore(t), name(t)
		newer := breaker.Record{State: breaker.Closed, Updated: base.Add(time.Minute)}
		older := breaker.Record{State: breaker.Open, Until: base.Add(time.Hour), Step: 1, Updated: base}
		if err := s.Save(ctx, n, newer); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, n, older); err != nil {
			t.Fatal(err)
		}
		got, _, err := s.Load(ctx, n)
		if err != nil || got.State != breaker.Closed {
			t.Fatalf("an older record overwrote a newer one: %+v, %v", got, err)
		}
		newest := breaker.Record{State: breaker.Open, Until: base.Add(2 * time.Hour), Step: 3, Updated: base.Add(2 * time.Minute)}
		if err := s.Save(ctx, n, newest); err != nil {
			t.Fatal(err)
		}
		got, _, _ = s.Load(ctx, n)
		if got.State != breaker.Open || got.Step != 3 {
			t.Fatalf("the newest record was not stored: %+v", got)
		}
	})

	t.Run("FailureWindow", func(t *testing.T) {
		s, n := newStore(t), name(t)
		w := 300 * time.Second
		for i, want := range []int{1, 2, 3} {
			got, err := s.AddFailure(ctx, n, base.Add(time.Duration(i)*100*time.Second), w)
			if err != nil || got != want {
				t.Fatalf("AddFailure #%d = %d, %v; want %d", i, got, err, want)
			}
		}
		// At base+300 s the failure at base has left the window.
		got, err := s.AddFailure(ctx, n, base.Add(300*time.Second), w)
		if err != nil || got != 3 {
			t.Fatalf("AddFailure after the window slid = %d, %v; want 3", got, err)
		}
		if err := s.ClearFailures(ctx, n); err != nil {
			t.Fatal(err)
		}
		got, err = s.AddFailure(ctx, n, base.Add(301*time.Second), w)
		if err != nil || got != 1 {
			t.Fatalf("AddFailure after ClearFailures = %d, %v; want 1", got, err)
		}
	})

	t.Run("SameInstantCountsTwice", func(t *testing.T) {
		s, n := newStore(t), name(t)
		for i := 1; i <= 2; i++ {
			got, err := s.AddFailure(ctx, n, base, time.Minute)
			if err != nil || got != i {
				t.Fatalf("AddFailure at one instant #%d = %d, %v", i, got, err)
			}
		}
	})

	t.Run("NamesAreIndependent", func(t *testing.T) {
		s, n := newStore(t), name(t)
		if _, err := s.AddFailure(ctx, n+"-a", base, time.Minute); err != nil {
			t.Fatal(err)
		}
		got, err := s.AddFailure(ctx, n+"-b", base, time.Minute)
		if err != nil || got != 1 {
			t.Fatalf("failures leaked between names: %d, %v", got, err)
		}
		if err := s.Save(ctx, n+"-a", breaker.Record{State: breaker.Open, Updated: base}); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := s.Load(ctx, n+"-b"); ok {
			t.Fatal("a record leaked between names")
		}
	})

	t.Run("ConcurrentFailures", func(t *testing.T) {
		s, n := newStore(t), name(t)
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := s.AddFailure(ctx, n, base.Add(time.Duration(i)*time.Millisecond), time.Hour); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got, err := s.AddFailure(ctx, n, base.Add(time.Second), time.Hour)
		if err != nil || got != 41 {
			t.Fatalf("after 40 concurrent failures AddFailure = %d, %v; want 41", got, err)
		}
	})

	t.Run("CancelledContext", func(t *testing.T) {
		s, n := newStore(t), name(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.AddFailure(cctx, n, base, time.Minute); err == nil {
			t.Fatal("AddFailure with a cancelled context succeeded")
		}
	})

	t.Run("BreakersShareThroughStore", func(t *testing.T) {
		s, n := newStore(t), name(t)
		cfg := breaker.Config{Name: n, FailureThreshold: 3}
		a, err := breaker.New(cfg, s)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := breaker.New(cfg, s)
		for _, br := range []*breaker.Breaker{a, b, a} {
			tk, err := br.Allow()
			if err != nil {
				t.Fatal(err)
			}
			tk.Done(fmt.Errorf("upstream down"))
		}
		if a.State() != breaker.Open {
			t.Fatalf("three failures across two breakers did not open: %s", a.State())
		}
		if err := b.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if b.State() != breaker.Open || b.Remaining() <= 59*time.Minute {
			t.Fatalf("the other breaker did not adopt the trip: %s, %s", b.State(), b.Remaining())
		}
		restarted, _ := breaker.New(cfg, s)
		if err := restarted.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if restarted.State() != breaker.Open {
			t.Fatalf("a restarted breaker forgot the trip: %s", restarted.State())
		}
	})

	t.Run("ProbeQuota", func(t *testing.T) {
		s, n := newStore(t), name(t)
		const period = int64(1_700_000_000_000_000)
		lease := time.Minute
		for i := 1; i <= 3; i++ {
			ok, err := s.AcquireProbe(ctx, n, period, fmt.Sprint("p", i), 3, base, lease)
			if err != nil || !ok {
				t.Fatalf("AcquireProbe #%d of 3 = %v, %v; want granted", i, ok, err)
			}
		}
		if ok, err := s.AcquireProbe(ctx, n, period, "p4", 3, base, lease); err != nil || ok {
			t.Fatalf("a 4th probe of 3 = %v, %v; want refused", ok, err)
		}
		if ok, err := s.AcquireProbe(ctx, n, period, "p1", 3, base, lease); err != nil || !ok {
			t.Fatalf("asking again for a slot already held = %v, %v; want granted", ok, err)
		}
		if err := s.ReleaseProbe(ctx, n, period, "p1"); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.AcquireProbe(ctx, n, period, "p4", 3, base, lease); err != nil || !ok {
			t.Fatalf("after a release AcquireProbe = %v, %v; want granted", ok, err)
		}
		for i, id := range []string{"p2", "p3"} {
			got, err := s.ProbeSuccess(ctx, n, period, id)
			if err != nil || got != i+1 {
				t.Fatalf("ProbeSuccess #%d = %d, %v; want %d", i+1, got, err, i+1)
			}
		}
		// A succeeded probe keeps its slot: releasing it does nothing.
		if err := s.ReleaseProbe(ctx, n, period, "p2"); err != nil {
			t.Fatal(err)
		}
		if ok, _ := s.AcquireProbe(ctx, n, period, "p5", 3, base, lease); ok {
			t.Fatal("releasing a succeeded probe freed its slot")
		}
		// p4 never reported: its lease ends, the succeeded ones stay.
		if ok, err := s.AcquireProbe(ctx, n, period, "p5", 3, base.Add(lease+time.Second), lease); err != nil || !ok {
			t.Fatalf("after p4's lease ended AcquireProbe = %v, %v; want granted", ok, err)
		}
		if ok, _ := s.AcquireProbe(ctx, n, period, "p6", 3, base.Add(lease+2*time.Second), lease); ok {
			t.Fatal("a succeeded probe's slot expired with its lease")
		}
		if got, err := s.ProbeSuccess(ctx, n, period, "p5"); err != nil || got != 3 {
			t.Fatalf("ProbeSuccess after the lease = %d, %v; want 3", got, err)
		}
	})

	t.Run("ProbePeriodsAreIndependent", func(t *testing.T) {
		s, n := newStore(t), name(t)
		const period = int64(1_700_000_000_000_000)
		if ok, err := s.AcquireProbe(ctx, n, period, "a", 1, base, time.Minute); err != nil || !ok {
			t.Fatalf("AcquireProbe = %v, %v", ok, err)
		}
		if _, err := s.ProbeSuccess(ctx, n, period, "a"); err != nil {
			t.Fatal(err)
		}
		if ok, err := s.AcquireProbe(ctx, n, period+1, "b", 1, base, time.Minute); err != nil || !ok {
			t.Fatalf("a new half-open period inherited the old one's slots: %v, %v", ok, err)
		}
		if got, err := s.ProbeSuccess(ctx, n, period+1, "b"); err != nil || got != 1 {
			t.Fatalf("a new half-open period inherited the old one's successes: %d, %v", got, err)
		}
		if ok, _ := s.AcquireProbe(ctx, n+"-other", period, "c", 1, base, time.Minute); !ok {
			t.Fatal("probe slots leaked between names")
		}
	})

	t.Run("ConcurrentProbes", func(t *testing.T) {
		s, n := newStore(t), name(t)
		const period = int64(1_700_000_000_000_000)
		var granted atomic.Int64
		var wg sync.WaitGroup
		errs := make(chan error, 32)
		for i := 0; i < 32; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.AcquireProbe(ctx, n, period, fmt.Sprint("g", i), 3, base, time.Minute)
				if err != nil {
					errs <- err
				}
				if ok {
					granted.Add(1)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if g := granted.Load(); g != 3 {
			t.Fatalf("32 concurrent AcquireProbe of 3 slots granted %d", g)
		}
	})

	// One-shot processes (talos ask: one call per process) after a trip
	// whose open period has ended: each starts half-open, and their probe
	// successes add up, so two successful processes close the shared
	// breaker for everyone after them.
	t.Run("OneShotProcessesCloseTheSharedBreaker", func(t *testing.T) {
		s, n := newStore(t), name(t)
		now := time.Now()
		if err := s.Save(ctx, n, breaker.Record{State: breaker.Open, Until: now.Add(-time.Second), Step: 1, Updated: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		process := func(i int, callErr error) *breaker.Breaker {
			t.Helper()
			b, err := breaker.New(breaker.Config{Name: n}, s)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if i < 2 && b.State() != breaker.HalfOpen {
				t.Fatalf("process %d starts %s, want half-open", i, b.State())
			}
			tk, err := b.Allow()
			if err != nil {
				t.Fatalf("process %d: Allow: %v", i, err)
			}
			tk.Done(callErr)
			return b
		}
		if b := process(0, nil); b.State() != breaker.HalfOpen {
			t.Fatalf("one probe success of 2 left process 0 %s", b.State())
		}
		if b := process(1, nil); b.State() != breaker.Closed {
			t.Fatalf("the second process's probe success (2 of 2 across processes) left it %s", b.State())
		}
		for i := 2; i < 4; i++ {
			b := process(i, nil)
			if b.State() != breaker.Closed {
				t.Fatalf("process %d after the shared close is %s", i, b.State())
			}
		}
		// And a single failure in a later process no longer re-opens it.
		if b := process(4, fmt.Errorf("503")); b.State() != breaker.Closed {
			t.Fatalf("one failure after the shared close: %s", b.State())
		}
	})

	t.Run("HalfOpenQuotaIsShared", func(t *testing.T) {
		s, n := newStore(t), name(t)
		now := time.Now()
		if err := s.Save(ctx, n, breaker.Record{State: breaker.Open, Until: now.Add(-time.Second), Updated: now.Add(-time.Hour)}); err != nil {
			t.Fatal(err)
		}
		var held []breaker.Ticket
		for i := 0; i < 4; i++ {
			b, _ := breaker.New(breaker.Config{Name: n}, s)
			if err := b.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			tk, err := b.Allow()
			switch {
			case i < 3 && err != nil:
				t.Fatalf("process %d refused one of the 3 probes: %v", i, err)
			case i == 3 && !breaker.IsRejection(err):
				t.Fatalf("a 4th process got a 4th probe of 3 (err %v)", err)
			}
			held = append(held, tk)
		}
		// An ignored probe gives its slot back to every process.
		held[0].Report(breaker.Verdict{Kind: breaker.Ignore})
		b, _ := breaker.New(breaker.Config{Name: n}, s)
		_ = b.Sync(ctx)
		if _, err := b.Allow(); err != nil {
			t.Fatalf("after an ignored probe another process was refused: %v", err)
		}
	})
}
