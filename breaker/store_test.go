package breaker_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/breakertest"
)

func TestMemoryStoreConformance(t *testing.T) {
	breakertest.Run(t, func(*testing.T) breaker.Store { return breaker.NewMemoryStore() })
}

// Reviewer's probe: one-shot processes sharing a breaker through
// the Store, one call each, after the trip's open period has ended. Before
// half-open progress was shared, every process started half-open, none
// ever saw 2 successes itself, and one failure re-opened for 60 min.
func TestOneShotProcessesCloseSharedBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := breaker.NewMemoryStore()
		ctx := context.Background()
		a, _ := breaker.New(breaker.Config{Name: "g", FailureThreshold: 1}, st)
		_ = call(a, errBoom)
		time.Sleep(61 * time.Minute)
		synctest.Wait()
		want := []breaker.State{breaker.HalfOpen, breaker.Closed, breaker.Closed, breaker.Closed}
		for i, w := range want {
			p, _ := breaker.New(breaker.Config{Name: "g"}, st)
			if err := p.Sync(ctx); err != nil {
				t.Fatal(err)
			}
			if err := call(p, nil); err != nil {
				t.Fatalf("process %d: %v", i, err)
			}
			if p.State() != w {
				t.Fatalf("process %d ends %s, want %s", i, p.State(), w)
			}
			time.Sleep(time.Minute)
		}
		p, _ := breaker.New(breaker.Config{Name: "g"}, st)
		_ = p.Sync(ctx)
		_ = call(p, errBoom)
		if p.State() != breaker.Closed {
			t.Fatalf("one failure after the shared close left a new process %s (remaining %s)", p.State(), p.Remaining())
		}
		// The long-running process that tripped adopts the close.
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, a, breaker.Closed)
	})
}

// A process that dies during its probe holds its shared slot only for
// ProbeLease.
func TestSharedProbeSlotOfDeadProcessExpires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := breaker.NewMemoryStore()
		ctx := context.Background()
		cfg := breaker.Config{Name: "g", FailureThreshold: 1, HalfOpenProbes: 1, HalfOpenSuccesses: 1, ProbeLease: 2 * time.Minute}
		a := newB(t, cfg, st)
		_ = call(a, errBoom)
		time.Sleep(61 * time.Minute)
		synctest.Wait()
		if _, err := a.Allow(); err != nil { // taken, never reported: the process "dies"
			t.Fatal(err)
		}
		b := newB(t, cfg, st)
		_ = b.Sync(ctx)
		mustState(t, b, breaker.HalfOpen)
		if _, err := b.Allow(); !breaker.IsRejection(err) {
			t.Fatalf("a second process got the only probe slot while it was held: %v", err)
		}
		time.Sleep(2*time.Minute + time.Second)
		if err := call(b, nil); err != nil {
			t.Fatalf("after the dead probe's lease the slot is still held: %v", err)
		}
		mustState(t, b, breaker.Closed)
	})
}

// Two processes probe the same shared half-open period; one's probe fails
// and re-opens the breaker. The other's later success must not close it
// again by counting successes of the period that has just failed: it adopts
// the newer open record instead.
func TestSharedProbeSuccessAfterAnotherProcessReopened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := breaker.NewMemoryStore()
		ctx := context.Background()
		cfg := breaker.Config{Name: "g", FailureThreshold: 1}
		a := newB(t, cfg, st)
		_ = call(a, errBoom)
		c := newB(t, cfg, st)
		_ = c.Sync(ctx)
		time.Sleep(time.Hour)
		synctest.Wait()
		mustState(t, a, breaker.HalfOpen)
		mustState(t, c, breaker.HalfOpen)
		ta1, err := a.Allow()
		if err != nil {
			t.Fatal(err)
		}
		ta2, err := a.Allow()
		if err != nil {
			t.Fatal(err)
		}
		ta1.Done(nil) // 1 of 2
		time.Sleep(time.Second)
		_ = call(c, errBoom) // c's probe fails: re-open, saved
		mustState(t, c, breaker.Open)
		time.Sleep(time.Second)
		ta2.Done(nil) // would be 2 of 2 in the failed period
		if a.State() != breaker.Open {
			t.Fatalf("a success in the failed period closed the breaker over a newer trip: %s", a.State())
		}
		if rec, _, _ := st.Load(ctx, "g"); rec.State != breaker.Open {
			t.Fatalf("stored record = %+v, want the re-open", rec)
		}
	})
}

// 64 goroutines over two breakers sharing one store: one half-open period
// admits at most HalfOpenProbes probes in all.
func TestSharedHalfOpenAdmitsAtMostProbes(t *testing.T) {
	st := breaker.NewMemoryStore()
	ctx := context.Background()
	now := time.Now()
	_ = st.Save(ctx, "g", breaker.Record{State: breaker.Open, Until: now.Add(-time.Second), Updated: now.Add(-time.Hour)})
	var bs [2]*breaker.Breaker
	for i := range bs {
		bs[i] = newB(t, breaker.Config{Name: "g"}, st)
		if err := bs[i].Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, bs[i], breaker.HalfOpen)
	}
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := bs[i%2].Allow(); err == nil {
				admitted.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := admitted.Load(); n != breaker.DefaultHalfOpenProbes {
		t.Fatalf("two breakers admitted %d probes in one shared half-open period, want %d", n, breaker.DefaultHalfOpenProbes)
	}
}
