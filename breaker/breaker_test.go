package breaker_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
)

var errBoom = errors.New("boom")

func newB(t *testing.T, cfg breaker.Config, store breaker.Store) *breaker.Breaker {
	t.Helper()
	b, err := breaker.New(cfg, store)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func call(b *breaker.Breaker, err error) error {
	tk, aerr := b.Allow()
	if aerr != nil {
		return aerr
	}
	tk.Done(err)
	return nil
}

func mustState(t *testing.T, b *breaker.Breaker, want breaker.State) {
	t.Helper()
	if got := b.State(); got != want {
		t.Fatalf("state = %s, want %s (stats %+v)", got, want, b.Stats())
	}
}

// 5 failures within 300 s open the breaker.
func TestFiveFailuresWithinWindowOpen(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{}, nil)
		for i := 0; i < 4; i++ {
			if err := call(b, errBoom); err != nil {
				t.Fatal(err)
			}
			time.Sleep(70 * time.Second) // 4 × 70 = 280 s < 300 s
		}
		mustState(t, b, breaker.Closed)
		if n := b.Stats().FailuresInWindow; n != 4 {
			t.Fatalf("FailuresInWindow = %d, want 4", n)
		}
		_ = call(b, errBoom)
		mustState(t, b, breaker.Open)
	})
}

// Item 17: 5 failures spread across more than 300 s leave it closed.
func TestFailuresSpreadBeyondWindowStayClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{}, nil)
		for i := 0; i < 20; i++ {
			_ = call(b, errBoom)
			time.Sleep(76 * time.Second) // any 5 consecutive span 304 s
		}
		mustState(t, b, breaker.Closed)
		if n := b.Stats().FailuresInWindow; n != 3 {
			// at the end, failures at -76,-152,-228 are within 300 s; -304 is not
			t.Fatalf("FailuresInWindow = %d, want 3", n)
		}
	})
}

// Item 17: OPEN fails fast for 3600 s, then HALF_OPEN admits at most 3
// probes; 2 successes close; any failure re-opens for a new 3600 s.
func TestOpenCooldownHalfOpenAndClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{Name: "gemini"}, nil)
		for i := 0; i < 5; i++ {
			_ = call(b, errBoom)
		}
		mustState(t, b, breaker.Open)
		err := call(b, nil)
		if !errors.Is(err, talos.ErrCircuitOpen) || !breaker.IsRejection(err) {
			t.Fatalf("open breaker admitted or wrong error: %v", err)
		}
		if r := b.Remaining(); r != time.Hour {
			t.Fatalf("Remaining = %s, want 1h", r)
		}
		time.Sleep(time.Hour - time.Second)
		synctest.Wait()
		mustState(t, b, breaker.Open)
		if r := b.Remaining(); r != time.Second {
			t.Fatalf("Remaining = %s, want 1s", r)
		}
		time.Sleep(time.Second)
		synctest.Wait()
		mustState(t, b, breaker.HalfOpen)
		if r := b.Remaining(); r != 0 {
			t.Fatalf("Remaining while half-open = %s", r)
		}

		// Three probes are admitted, the fourth is not.
		var tks []breaker.Ticket
		for i := 0; i < 3; i++ {
			tk, err := b.Allow()
			if err != nil {
				t.Fatalf("probe %d rejected: %v", i, err)
			}
			tks = append(tks, tk)
		}
		if _, err := b.Allow(); !errors.Is(err, talos.ErrCircuitOpen) {
			t.Fatalf("4th probe admitted: %v", err)
		}
		tks[0].Done(nil)
		mustState(t, b, breaker.HalfOpen)
		tks[1].Done(nil)
		mustState(t, b, breaker.Closed)
		tks[2].Done(errBoom) // a stale probe of the old half-open generation
		mustState(t, b, breaker.Closed)
		if n := b.Stats().FailuresInWindow; n != 0 {
			t.Fatalf("stale probe counted: %d", n)
		}
	})
}

func TestHalfOpenFailureReopensForFullCooldown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var trs []breaker.Transition
		var mu sync.Mutex
		b := newB(t, breaker.Config{OnStateChange: func(tr breaker.Transition) {
			mu.Lock()
			trs = append(trs, tr)
			mu.Unlock()
		}}, nil)
		for i := 0; i < 5; i++ {
			_ = call(b, errBoom)
		}
		time.Sleep(time.Hour)
		synctest.Wait()
		mustState(t, b, breaker.HalfOpen)
		_ = call(b, nil)     // one success
		_ = call(b, errBoom) // then a failure
		mustState(t, b, breaker.Open)
		if r := b.Remaining(); r != time.Hour {
			t.Fatalf("re-open Remaining = %s, want a new 1h", r)
		}
		mu.Lock()
		defer mu.Unlock()
		want := []breaker.State{breaker.Open, breaker.HalfOpen, breaker.Open}
		if len(trs) != len(want) {
			t.Fatalf("transitions = %+v", trs)
		}
		for i, s := range want {
			if trs[i].To != s {
				t.Fatalf("transition %d to %s, want %s", i, trs[i].To, s)
			}
		}
		if trs[0].OpenFor != time.Hour || trs[0].Reason == "" || trs[0].Failures != 5 || trs[2].Failures != 0 {
			t.Fatalf("first transition = %+v", trs[0])
		}
	})
}

func TestLadder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ladder := []time.Duration{time.Minute, 5 * time.Minute, 25 * time.Minute, 60 * time.Minute}
		b := newB(t, breaker.Config{OpenFor: ladder, FailureThreshold: 1}, nil)
		_ = call(b, errBoom)
		for i, want := range append(ladder, 60*time.Minute) {
			mustState(t, b, breaker.Open)
			if r := b.Remaining(); r != want {
				t.Fatalf("step %d: Remaining = %s, want %s", i, r, want)
			}
			time.Sleep(want)
			synctest.Wait()
			mustState(t, b, breaker.HalfOpen)
			_ = call(b, errBoom) // probe fails: next step
		}
		// Now close cleanly, and stay closed longer than the window.
		time.Sleep(time.Hour)
		synctest.Wait()
		_ = call(b, nil)
		_ = call(b, nil)
		mustState(t, b, breaker.Closed)
		time.Sleep(301 * time.Second)
		_ = call(b, errBoom)
		if r := b.Remaining(); r != time.Minute {
			t.Fatalf("after a clean close the ladder should restart at 1m, got %s", r)
		}
		// A trip soon after a close keeps climbing.
		time.Sleep(time.Minute)
		synctest.Wait()
		_ = call(b, nil)
		_ = call(b, nil)
		mustState(t, b, breaker.Closed)
		time.Sleep(10 * time.Second)
		_ = call(b, errBoom)
		if r := b.Remaining(); r != 5*time.Minute {
			t.Fatalf("a trip 10 s after closing should climb to 5m, got %s", r)
		}
	})
}

// Item 19 (breaker side): the 429 table.
func TestRateLimitVerdicts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{}, nil)
		tk, _ := b.Allow()
		tk.Report(breaker.RateLimitVerdict(120*time.Second, true))
		mustState(t, b, breaker.Closed)
		if r := b.Remaining(); r != 121*time.Second {
			t.Fatalf("Retry-After 120 → wait %s, want 121s", r)
		}
		if err := call(b, nil); !errors.Is(err, talos.ErrCircuitOpen) {
			t.Fatalf("call during the wait admitted: %v", err)
		}
		time.Sleep(121 * time.Second)
		if err := call(b, nil); err != nil {
			t.Fatalf("call after the wait rejected: %v", err)
		}

		// Paced 429s never trip, however many arrive inside the window.
		for i := 0; i < 10; i++ {
			tk, err := b.Allow()
			if err != nil {
				t.Fatalf("paced 429 #%d: %v", i, err)
			}
			tk.Report(breaker.RateLimitVerdict(10*time.Second, true))
			mustState(t, b, breaker.Closed)
			time.Sleep(b.Remaining())
		}
		if s := b.Stats(); s.Failures != 0 {
			t.Fatalf("paced 429s counted as %d failures", s.Failures)
		}

		tk, _ = b.Allow()
		tk.Report(breaker.RateLimitVerdict(301*time.Second, true))
		mustState(t, b, breaker.Open)
		if r := b.Remaining(); r != time.Hour {
			t.Fatalf("Retry-After 301 → open %s, want the 1h cooldown", r)
		}
	})
}

func TestExponentialBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{FailureThreshold: 100}, nil)
		for _, want := range []time.Duration{5, 10, 20, 40, 60, 60} {
			tk, err := b.Allow()
			if err != nil {
				t.Fatal(err)
			}
			tk.Report(breaker.RateLimitVerdict(0, false))
			if r := b.Remaining(); r != want*time.Second {
				t.Fatalf("backoff = %s, want %ds", r, want)
			}
			time.Sleep(b.Remaining())
		}
		_ = call(b, nil) // a success resets the sequence
		tk, _ := b.Allow()
		tk.Report(breaker.RateLimitVerdict(0, false))
		if r := b.Remaining(); r != 5*time.Second {
			t.Fatalf("backoff after success = %s, want 5s", r)
		}
	})
}

func TestIgnoreAndCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{FailureThreshold: 1, OpenFor: []time.Duration{time.Minute}}, nil)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = call(b, ctx.Err())
		mustState(t, b, breaker.Closed)
		_ = call(b, errBoom)
		time.Sleep(time.Minute)
		synctest.Wait()
		mustState(t, b, breaker.HalfOpen)
		// Ignored probes give their slot back: many cancellations never
		// exhaust the half-open quota.
		for i := 0; i < 10; i++ {
			if err := call(b, context.Canceled); err != nil {
				t.Fatalf("ignored probe %d used up the quota: %v", i, err)
			}
		}
		if s := b.Stats(); s.Ignored != 11 || s.HalfOpenProbes != 0 {
			t.Fatalf("stats = %+v", s)
		}
	})
}

func TestExecute(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{FailureThreshold: 2}, nil)
		ctx := context.Background()
		v, err := breaker.Execute(ctx, b, func(context.Context) (int, error) { return 42, nil })
		if v != 42 || err != nil {
			t.Fatalf("Execute = %d, %v", v, err)
		}
		_, err = breaker.Execute(ctx, b, func(context.Context) (int, error) { return 0, errBoom })
		if !errors.Is(err, errBoom) {
			t.Fatalf("err = %v", err)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Fatal("panic swallowed")
				}
			}()
			_, _ = breaker.Execute(ctx, b, func(context.Context) (int, error) { panic("x") })
		}()
		mustState(t, b, breaker.Open) // the panic was the second failure
		called := false
		_, err = breaker.Execute(ctx, b, func(context.Context) (int, error) { called = true; return 1, nil })
		if called || !errors.Is(err, talos.ErrCircuitOpen) {
			t.Fatalf("open breaker ran fn=%v err=%v", called, err)
		}
		s := b.Stats()
		if s.Successes != 1 || s.Failures != 2 || s.Rejected != 1 || s.Trips != 1 {
			t.Fatalf("stats = %+v", s)
		}
	})
}

func TestTripAndReset(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{}, nil)
		b.Trip(2*time.Hour, "operator")
		mustState(t, b, breaker.Open)
		if r := b.Remaining(); r != 2*time.Hour {
			t.Fatalf("Remaining = %s", r)
		}
		b.Reset("operator")
		mustState(t, b, breaker.Closed)
		if err := call(b, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]breaker.Config{
		"threshold":  {FailureThreshold: -1},
		"window":     {Window: -time.Second},
		"ladder":     {OpenFor: []time.Duration{time.Minute, 0}},
		"probes":     {HalfOpenProbes: 256},
		"successes":  {HalfOpenProbes: 2, HalfOpenSuccesses: 3},
		"backoffmax": {BackoffBase: time.Minute, BackoffMax: time.Second},
	} {
		_, err := breaker.New(cfg, nil)
		if !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("%s: err = %v, want T010", name, err)
		}
	}
}

// A stress test: 64 goroutines hammer a half-open breaker; it never admits
// more than its 3 probes per half-open period.
func TestHalfOpenAdmitsAtMostProbes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{FailureThreshold: 1, OpenFor: []time.Duration{time.Second}}, nil)
		for round := 0; round < 20; round++ {
			_ = call(b, errBoom)
			mustState(t, b, breaker.Open)
			time.Sleep(time.Second)
			synctest.Wait()
			mustState(t, b, breaker.HalfOpen)
			var admitted atomic.Int32
			var tickets sync.Map
			var wg sync.WaitGroup
			start := make(chan struct{})
			for g := 0; g < 64; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					for i := 0; i < 50; i++ {
						if tk, err := b.Allow(); err == nil {
							admitted.Add(1)
							tickets.Store(g*100+i, tk)
						}
					}
				}()
			}
			close(start)
			wg.Wait()
			if n := admitted.Load(); n != 3 {
				t.Fatalf("round %d: half-open admitted %d calls, want exactly 3", round, n)
			}
			// Fail one probe: back to open, and the others are stale.
			tickets.Range(func(_, v any) bool { v.(breaker.Ticket).Done(errBoom); return true })
			time.Sleep(time.Second)
			synctest.Wait()
			_ = call(b, nil)
			_ = call(b, nil)
			mustState(t, b, breaker.Closed)
		}
	})
}

// The same under real concurrency (not a synctest bubble), for -race.
func TestConcurrentMixedLoad(t *testing.T) {
	b := newB(t, breaker.Config{FailureThreshold: 3, OpenFor: []time.Duration{time.Millisecond}}, nil)
	var wg sync.WaitGroup
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 500; i++ {
				var err error
				if (g+i)%7 == 0 {
					err = errBoom
				}
				_, _ = breaker.Execute(context.Background(), b, func(context.Context) (int, error) { return i, err })
				_ = b.Stats()
				_ = b.Remaining()
			}
		}()
	}
	wg.Wait()
	s := b.Stats()
	if s.Successes+s.Failures+s.Rejected+s.Ignored != 64*500 {
		t.Fatalf("calls lost: %+v", s)
	}
}

func TestSharedAndPersistedState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := breaker.NewMemoryStore()
		ctx := context.Background()
		a := newB(t, breaker.Config{Name: "gemini"}, store)
		c := newB(t, breaker.Config{Name: "gemini"}, store)
		// Failures from two processes add up in the shared window.
		for i := 0; i < 2; i++ {
			_ = call(a, errBoom)
			_ = call(c, errBoom)
		}
		mustState(t, a, breaker.Closed)
		_ = call(c, errBoom) // the fifth failure overall
		mustState(t, c, breaker.Open)
		mustState(t, a, breaker.Closed)
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, a, breaker.Open)
		if a.Remaining() != time.Hour {
			t.Fatalf("adopted Remaining = %s", a.Remaining())
		}

		// A "restart" 10 min later: a new breaker restores the open state.
		time.Sleep(10 * time.Minute)
		restarted := newB(t, breaker.Config{Name: "gemini"}, store)
		if err := restarted.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, restarted, breaker.Open)
		if r := restarted.Remaining(); r != 50*time.Minute {
			t.Fatalf("restored Remaining = %s, want 50m", r)
		}
		// A restart after the open period ended starts half-open.
		time.Sleep(time.Hour)
		synctest.Wait()
		late := newB(t, breaker.Config{Name: "gemini"}, store)
		if err := late.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, late, breaker.HalfOpen)
		_ = call(late, nil)
		_ = call(late, nil)
		mustState(t, late, breaker.Closed)
		// The close is shared too.
		mustState(t, a, breaker.HalfOpen)
		if err := a.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, a, breaker.Closed)
		// Other names are independent.
		other := newB(t, breaker.Config{Name: "other"}, store)
		if err := other.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		mustState(t, other, breaker.Closed)
	})
}

func TestWatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		store := breaker.NewMemoryStore()
		a := newB(t, breaker.Config{Name: "w", FailureThreshold: 1}, store)
		c := newB(t, breaker.Config{Name: "w", FailureThreshold: 1}, store)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- c.Watch(ctx, 10*time.Second) }()
		_ = call(a, errBoom)
		time.Sleep(11 * time.Second)
		synctest.Wait()
		mustState(t, c, breaker.Open)
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Fatalf("Watch = %v", err)
		}
		if err := c.Watch(ctx, 0); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Fatalf("Watch(0) = %v", err)
		}
	})
}

// Reviewer's probe: a 429 with a short Retry-After during
// half-open gave the probe slot back and ignored the delay, so a service
// that paces us was probed on every request. Five 429s (Retry-After 100 s)
// now admit one probe per 101 s, without tripping.
func TestHalfOpen429HoldsProbesOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{FailureThreshold: 1, OpenFor: []time.Duration{time.Minute}}, nil)
		_ = call(b, errBoom)
		time.Sleep(time.Minute)
		synctest.Wait()
		mustState(t, b, breaker.HalfOpen)
		rateLimited := breaker.RateLimitVerdict(100*time.Second, true)
		start := time.Now()
		var admittedAt []time.Duration
		for time.Since(start) < 5*101*time.Second {
			tk, err := b.Allow()
			if err == nil {
				admittedAt = append(admittedAt, time.Since(start))
				tk.Report(rateLimited)
			} else if !breaker.IsRejection(err) {
				t.Fatal(err)
			}
			mustState(t, b, breaker.HalfOpen)
			time.Sleep(time.Second)
		}
		want := []time.Duration{0, 101 * time.Second, 202 * time.Second, 303 * time.Second, 404 * time.Second}
		if len(admittedAt) != len(want) {
			t.Fatalf("%d probes admitted over 505 s, the first at %v; want one per 101 s: %v", len(admittedAt), admittedAt[:min(len(admittedAt), 8)], want)
		}
		for i := range want {
			if admittedAt[i] != want[i] {
				t.Fatalf("probes admitted at %v, want %v", admittedAt, want)
			}
		}
		// Five back-to-back requests right after a 429: only the first probes.
		time.Sleep(101 * time.Second)
		n := 0
		for i := 0; i < 5; i++ {
			if tk, err := b.Allow(); err == nil {
				n++
				tk.Report(rateLimited)
			}
		}
		if n != 1 {
			t.Fatalf("five requests after the delay admitted %d probes, want 1", n)
		}
		if r := b.Remaining(); r != 101*time.Second {
			t.Fatalf("half-open Remaining after a 429 = %s, want 101s", r)
		}
		// The wait does not stop the breaker closing afterwards.
		time.Sleep(101 * time.Second)
		_ = call(b, nil)
		_ = call(b, nil)
		mustState(t, b, breaker.Closed)
	})
}

// Reviewer's probe: Stats.LadderStep was documented "0 after a
// clean close" but was reset only by the next trip. It now reads 0 as soon
// as the breaker has stayed closed for LadderResetAfter.
func TestLadderStepAfterCleanClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := newB(t, breaker.Config{FailureThreshold: 1, OpenFor: []time.Duration{time.Minute, 5 * time.Minute}}, nil)
		_ = call(b, errBoom)
		if s := b.Stats().LadderStep; s != 1 {
			t.Fatalf("LadderStep after the first trip = %d, want 1", s)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		_ = call(b, nil)
		_ = call(b, nil)
		mustState(t, b, breaker.Closed)
		// Closed for less than LadderResetAfter (= Window, 300 s): a trip
		// now would climb, so the step stays.
		time.Sleep(299 * time.Second)
		if s := b.Stats().LadderStep; s != 1 {
			t.Fatalf("LadderStep 299 s after the close = %d, want 1", s)
		}
		time.Sleep(time.Second)
		if s := b.Stats().LadderStep; s != 0 {
			t.Fatalf("LadderStep after a clean close (300 s closed) = %d, want 0", s)
		}
		time.Sleep(time.Hour)
		if s := b.Stats().LadderStep; s != 0 {
			t.Fatalf("LadderStep an hour after the close = %d, want 0", s)
		}
		_ = call(b, errBoom)
		if r, s := b.Remaining(), b.Stats().LadderStep; r != time.Minute || s != 1 {
			t.Fatalf("a trip after a clean close: Remaining %s, LadderStep %d; want 1m, 1", r, s)
		}
	})
}
