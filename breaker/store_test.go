package breaker_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/breakertest"
)

func TestMemoryStoreConformance(t *testing.T) {
	breakertest.Run(t, func(*testing.T) breaker.Store { return breaker.NewMemoryStore() })
}

// Reviewer's probe (issue 3): one-shot processes sharing a breaker through
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
