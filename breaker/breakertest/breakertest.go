package breakertest

import (
	"context"
	"fmt"
	"sync"
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
}
