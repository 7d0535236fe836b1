package vram_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

const (
	coder  = "coder"
	vision = "vision"
)

// fixture: a 24 GB GPU with 1 GB used by the desktop, coder (needs 7 GB
// free, takes 5 GB) and vision (needs 9 GB free, takes 7 GB).
type fixture struct {
	m     *vram.Mutex
	rt    *vramtest.Runtime
	gpu   *vramtest.GPU
	procs *vramtest.Processes
}

func testModels() map[string]vram.Model {
	return map[string]vram.Model{
		coder:  {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB},
		vision: {MinFree: 9 * vram.GiB, Size: 7 * vram.GiB},
	}
}

func newFixture(t *testing.T, cfg vram.Config) *fixture {
	t.Helper()
	gpu := vramtest.NewGPU(24 * vram.GiB)
	gpu.SetUsed(1 * vram.GiB)
	procs := vramtest.NewProcesses()
	rt := vramtest.NewRuntime(map[string]uint64{coder: 5 * vram.GiB, vision: 7 * vram.GiB}, gpu, procs)
	if cfg.Models == nil {
		cfg.Models = testModels()
	}
	m, err := vram.New(cfg, rt, gpu, rt, procs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		checkTransitions(t, m)
		if v := rt.Violations(); len(v) > 0 {
			t.Errorf("runtime saw loads while another model was resident: %v", v)
		}
	})
	return &fixture{m: m, rt: rt, gpu: gpu, procs: procs}
}

// checkTransitions fails if the mutex ever took an edge outside the table.
func checkTransitions(t *testing.T, m *vram.Mutex) {
	t.Helper()
	allowed := vram.Transitions()
	for tr, n := range m.Stats().Transitions {
		if _, ok := allowed[tr]; !ok {
			t.Errorf("transition %v taken %d times; it is not in vram.Transitions()", tr, n)
		}
	}
}

func transitions(m *vram.Mutex) map[string]uint64 {
	out := map[string]uint64{}
	for tr, n := range m.Stats().Transitions {
		out[tr.String()] = n
	}
	return out
}

func mustAcquire(t *testing.T, m *vram.Mutex, model string) *vram.Lease {
	t.Helper()
	l, err := m.Acquire(context.Background(), model)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", model, err)
	}
	if l.Model() != model {
		t.Fatalf("lease is for %q, want %q", l.Model(), model)
	}
	return l
}

type result struct {
	l   *vram.Lease
	err error
	at  time.Duration
}

// acquireAsync starts Acquire in a goroutine and returns its result channel.
func acquireAsync(m *vram.Mutex, model string) <-chan result {
	ch := make(chan result, 1)
	start := time.Now()
	go func() {
		l, err := m.Acquire(context.Background(), model)
		ch <- result{l, err, time.Since(start)}
	}()
	return ch
}

func wantCode(t *testing.T, err error, code talos.Code) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want %s", code)
	}
	if !errors.Is(err, code) {
		t.Fatalf("err = %v, want code %s", err, code)
	}
}

func TestFirstAcquireLoads(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		if s := f.m.Stats(); s.State != vram.Idle || s.Model != "" {
			t.Fatalf("new mutex: state %v model %q, want idle", s.State, s.Model)
		}
		l := mustAcquire(t, f.m, coder)
		s := f.m.Stats()
		if s.State != vram.Ready || s.Model != coder || s.Leases != 1 {
			t.Fatalf("after Acquire: %+v, want ready coder with 1 lease", s)
		}
		if !f.rt.IsResident(coder) || f.gpu.Used() != 6*vram.GiB {
			t.Fatalf("runtime resident=%v gpu used=%d, want coder resident and 6 GiB used", f.rt.IsResident(coder), f.gpu.Used())
		}
		want := map[string]uint64{"idle->loading": 1, "loading->ready": 1}
		if got := transitions(f.m); !mapsEqual(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
		l.Release()
		l.Release() // idempotent
		if s := f.m.Stats(); s.Leases != 0 || s.State != vram.Ready {
			t.Fatalf("after Release: leases %d state %v, want 0 and ready (the model stays resident)", s.Leases, s.State)
		}
	})
}

func TestLeasesShareResidentModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		var ls []*vram.Lease
		for range 5 {
			ls = append(ls, mustAcquire(t, f.m, coder))
		}
		if s := f.m.Stats(); s.Leases != 5 || s.Grants != 5 {
			t.Fatalf("leases %d grants %d, want 5 and 5", s.Leases, s.Grants)
		}
		if f.rt.Loads() != 1 {
			t.Fatalf("runtime loads = %d, want 1", f.rt.Loads())
		}
		for _, l := range ls {
			l.Release()
		}
		if s := f.m.Stats(); s.Leases != 0 {
			t.Fatalf("leases %d after releasing all, want 0", s.Leases)
		}
	})
}

// A vision load must not evict the coder while a lease is held.
func TestSwapWaitsForEveryLease(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l1 := mustAcquire(t, f.m, coder)
		l2 := mustAcquire(t, f.m, coder)
		ch := acquireAsync(f.m, vision)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		select {
		case r := <-ch:
			t.Fatalf("vision granted while coder leases are held: %+v", r)
		default:
		}
		if !f.rt.IsResident(coder) || f.rt.IsResident(vision) || f.rt.Unloads() != 0 {
			t.Fatalf("coder evicted while leased (coder=%v vision=%v unloads=%d)", f.rt.IsResident(coder), f.rt.IsResident(vision), f.rt.Unloads())
		}
		if s := f.m.Stats(); s.Waiters != 1 || s.State != vram.Ready || s.Model != coder {
			t.Fatalf("stats %+v, want ready coder with 1 waiter", s)
		}
		l1.Release()
		synctest.Wait()
		if f.rt.Unloads() != 0 {
			t.Fatal("coder unloaded while one lease is still held")
		}
		l2.Release()
		r := <-ch
		if r.err != nil {
			t.Fatalf("vision after release: %v", r.err)
		}
		defer r.l.Release()
		if !f.rt.IsResident(vision) || f.rt.IsResident(coder) {
			t.Fatalf("after swap: coder=%v vision=%v, want only vision", f.rt.IsResident(coder), f.rt.IsResident(vision))
		}
		want := map[string]uint64{"idle->loading": 2, "loading->ready": 2, "ready->unloading": 1, "unloading->idle": 1}
		if got := transitions(f.m); !mapsEqual(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
		if s := f.m.Stats(); s.Wait.Count != 3 || s.Wait.Sum < 10 {
			t.Fatalf("wait histogram %+v, want 3 waits summing ≥ 10 s", s.Wait)
		}
	})
}

// A wait over 30 s returns T100 and leaves the state unchanged.
func TestAcquireTimeoutChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l := mustAcquire(t, f.m, coder)
		defer l.Release()
		before := f.m.Stats()
		start := time.Now()
		_, err := f.m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeVRAMTimeout)
		if d := time.Since(start); d != vram.DefaultAcquireTimeout {
			t.Fatalf("timed out after %v, want exactly %v", d, vram.DefaultAcquireTimeout)
		}
		after := f.m.Stats()
		if after.State != before.State || after.Model != before.Model || after.Leases != 1 || after.Waiters != 0 {
			t.Fatalf("state changed by a timed-out wait: before %+v after %+v", before, after)
		}
		if !mapsEqual(transitions(f.m), map[string]uint64{"idle->loading": 1, "loading->ready": 1}) {
			t.Fatalf("transitions changed: %v", transitions(f.m))
		}
		if after.Timeouts != 1 || f.rt.Unloads() != 0 || f.rt.Loads() != 1 {
			t.Fatalf("timeouts %d unloads %d loads %d, want 1, 0, 1", after.Timeouts, f.rt.Unloads(), f.rt.Loads())
		}
	})
}

func TestAcquireTimeoutConfigurable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{AcquireTimeout: 5 * time.Second})
		l := mustAcquire(t, f.m, coder)
		defer l.Release()
		start := time.Now()
		_, err := f.m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeVRAMTimeout)
		if d := time.Since(start); d != 5*time.Second {
			t.Fatalf("timed out after %v, want 5s", d)
		}
	})
}

func TestAcquireContextCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l := mustAcquire(t, f.m, coder)
		defer l.Release()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := f.m.Acquire(ctx, vision)
		wantCode(t, err, talos.CodeVRAMTimeout)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v does not wrap context.DeadlineExceeded", err)
		}
		ctx2, cancel2 := context.WithCancel(context.Background())
		go func() { time.Sleep(time.Second); cancel2() }()
		if _, err := f.m.Acquire(ctx2, vision); !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled Acquire: %v, want context.Canceled", err)
		}
		if s := f.m.Stats(); s.Waiters != 0 || s.Model != coder {
			t.Fatalf("stats %+v after cancelled waits, want no waiters, coder resident", s)
		}
	})
}

// Fairness: once a swap waits, new leases on the resident model queue behind it.
func TestWaitingSwapIsNotStarved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l1 := mustAcquire(t, f.m, coder)
		vch := acquireAsync(f.m, vision)
		synctest.Wait()
		cch := acquireAsync(f.m, coder) // arrives after the vision request
		synctest.Wait()
		select {
		case r := <-cch:
			t.Fatalf("a new coder lease jumped the waiting vision swap: %+v", r)
		default:
		}
		if s := f.m.Stats(); s.Waiters != 2 || s.Leases != 1 {
			t.Fatalf("stats %+v, want 2 waiters and 1 lease", s)
		}
		time.Sleep(time.Second)
		l1.Release()
		v := <-vch
		if v.err != nil {
			t.Fatal(v.err)
		}
		synctest.Wait()
		select {
		case r := <-cch:
			t.Fatalf("coder granted while vision is leased: %+v", r)
		default:
		}
		time.Sleep(2 * time.Second)
		v.l.Release()
		c := <-cch
		if c.err != nil {
			t.Fatal(c.err)
		}
		c.l.Release()
		if c.at < v.at+2*time.Second {
			t.Fatalf("coder (%v) was not served after vision (%v) + its 2 s use", c.at, v.at)
		}
		if f.rt.Loads() != 3 {
			t.Fatalf("loads = %d, want 3 (coder, vision, coder)", f.rt.Loads())
		}
	})
}

// Requests for the same model queued together are granted together.
func TestQueuedRunIsGrantedTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l := mustAcquire(t, f.m, coder)
		var chs []<-chan result
		for range 3 {
			chs = append(chs, acquireAsync(f.m, vision))
			synctest.Wait()
		}
		l.Release()
		for _, ch := range chs {
			r := <-ch
			if r.err != nil {
				t.Fatal(r.err)
			}
			defer r.l.Release()
		}
		if s := f.m.Stats(); s.Leases != 3 || s.Model != vision {
			t.Fatalf("stats %+v, want 3 vision leases", s)
		}
	})
}

// Too little free VRAM is refused and nothing changes.
func TestLoadRefusedWithoutFreeVRAM(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.gpu.SetUsed(17 * vram.GiB) // 7 GiB free: coder needs MORE than 7
		_, err := f.m.Acquire(context.Background(), coder)
		wantCode(t, err, talos.CodeOOMGPU)
		s := f.m.Stats()
		if s.State != vram.Idle || len(s.Transitions) != 0 || s.Waiters != 0 || f.rt.Loads() != 0 || s.Refusals["vram"] != 1 {
			t.Fatalf("refused load changed something: %+v loads=%d", s, f.rt.Loads())
		}
		f.gpu.SetUsed(17*vram.GiB - 1) // one byte more than 7 GiB free
		l := mustAcquire(t, f.m, coder)
		l.Release()
	})
}

func TestSwapRefusedWhenTargetCannotFit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l := mustAcquire(t, f.m, coder) // used 6 GiB of 24
		l.Release()
		// Even after unloading coder (5 GiB) only 9 GiB would be free; vision needs > 9.
		f.gpu.SetUsed(20 * vram.GiB)
		_, err := f.m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeOOMGPU)
		if s := f.m.Stats(); s.State != vram.Ready || s.Model != coder || f.rt.Unloads() != 0 {
			t.Fatalf("refused swap changed state: %+v unloads=%d", s, f.rt.Unloads())
		}
	})
}

func TestUnknownModelRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{Models: map[string]vram.Model{
			coder:   {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB},
			"ghost": {MinFree: 1 * vram.GiB}, // configured but the runtime lacks it
		}})
		_, err := f.m.Acquire(context.Background(), "gpt-17")
		wantCode(t, err, talos.CodeLocalModelLoad)
		_, err = f.m.Acquire(context.Background(), "ghost")
		wantCode(t, err, talos.CodeLocalModelLoad)
		s := f.m.Stats()
		if s.State != vram.Idle || len(s.Transitions) != 0 || s.Refusals["unknown_model"] != 2 {
			t.Fatalf("unknown models changed state: %+v", s)
		}
	})
}

func TestGPUUnreadableRefusesLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.gpu.Fail(&vram.ProbeError{Kind: vram.ProbeDriverError, Source: "fake"})
		_, err := f.m.Acquire(context.Background(), coder)
		wantCode(t, err, talos.CodeGPUQuery)
		if vram.KindOf(err) != vram.ProbeDriverError {
			t.Fatalf("KindOf(%v) = %v, want DRIVER_ERROR", err, vram.KindOf(err))
		}
		if s := f.m.Stats(); s.State != vram.Idle || len(s.Transitions) != 0 {
			t.Fatalf("state changed: %+v", s)
		}
	})
}

// A failed load is unloaded again (not Error).
func TestLoadFailureUnloadsAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.OnLoad = func(ctx context.Context, model string) error { return errors.New("runner crashed") }
		_, err := f.m.Acquire(context.Background(), coder)
		wantCode(t, err, talos.CodeLocalModelLoad)
		synctest.Wait()
		want := map[string]uint64{"idle->loading": 1, "loading->unloading": 1, "unloading->idle": 1}
		if got := transitions(f.m); !mapsEqual(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
		s := f.m.Stats()
		if s.State != vram.Idle || s.LoadFailures != 1 {
			t.Fatalf("stats %+v, want idle with 1 load failure", s)
		}
		f.rt.OnLoad = nil
		mustAcquire(t, f.m, coder).Release()
	})
}

func TestLoadTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.OnLoad = func(ctx context.Context, model string) error { <-ctx.Done(); return ctx.Err() }
		start := time.Now()
		_, err := f.m.Acquire(context.Background(), coder)
		wantCode(t, err, talos.CodeLocalModelLoad)
		if d := time.Since(start); d != vram.DefaultLoadTimeout {
			t.Fatalf("load failed after %v, want %v", d, vram.DefaultLoadTimeout)
		}
		synctest.Wait()
		if s := f.m.Stats(); s.State != vram.Idle {
			t.Fatalf("state %v after load timeout, want idle", s.State)
		}
	})
}

// hangUnload makes every unload block until its context ends.
func hangUnload(ctx context.Context, model string) error { <-ctx.Done(); return ctx.Err() }

// An unload that hangs: SIGTERM → 10 s grace → SIGKILL → verified → 60 s cooldown.
func TestUnloadHangKillLadder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.Runner = func(string) vramtest.Proc { return vramtest.Proc{Behavior: vramtest.IgnoreTerm} }
		mustAcquire(t, f.m, coder).Release()
		pid, _ := f.rt.RunnerPID(context.Background(), coder)
		f.rt.OnUnload = hangUnload

		start := time.Now()
		_, err := f.m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeUnloadHang)
		took := time.Since(start)
		// 29 s hang threshold + 10 s grace (+ polling).
		if took < 39*time.Second || took > 40*time.Second {
			t.Fatalf("ladder finished after %v, want 39–40 s", took)
		}
		if sig := f.procs.Signals(pid); !slices.Equal(sig, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
			t.Fatalf("signals %v, want SIGTERM then SIGKILL", sig)
		}
		s := f.m.Stats()
		if s.State != vram.Idle || s.LastKill == nil || s.LastKill.Method != vram.KillSIGKILL || !s.LastKill.Verified || s.LastKill.PID != pid {
			t.Fatalf("after kill: %+v / %+v", s, s.LastKill)
		}
		if s.CooldownUntil.IsZero() || s.CooldownUntil.Sub(time.Now()) != vram.DefaultCooldown {
			t.Fatalf("cooldown until %v, want now+60s", s.CooldownUntil)
		}
		if f.rt.IsResident(coder) {
			t.Fatal("coder still resident after its runner was killed")
		}

		// A load during the cooldown waits for its end.
		cooldownEnd := s.CooldownUntil
		var loadedAt time.Time
		f.rt.OnLoad = func(ctx context.Context, model string) error { loadedAt = time.Now(); return nil }
		time.Sleep(40 * time.Second)
		l := mustAcquire(t, f.m, vision)
		l.Release()
		if loadedAt.Before(cooldownEnd) {
			t.Fatalf("loaded at %v, before the cooldown ended at %v", loadedAt, cooldownEnd)
		}
		s = f.m.Stats()
		if len(s.LastKill.Diagnostics) != 0 || !s.CooldownUntil.IsZero() {
			t.Fatalf("diagnostics %+v cooldown %v, want clean and over", s.LastKill.Diagnostics, s.CooldownUntil)
		}
		if s.Kills[vram.KillSIGKILL] != 1 {
			t.Fatalf("kills %v", s.Kills)
		}
	})
}

func TestUnloadHangRunnerExitsOnSIGTERM(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.Runner = func(string) vramtest.Proc {
			return vramtest.Proc{Behavior: vramtest.ExitOnTerm, TermDelay: 3 * time.Second, Child: true}
		}
		mustAcquire(t, f.m, coder).Release()
		pid, _ := f.rt.RunnerPID(context.Background(), coder)
		f.rt.OnUnload = hangUnload
		start := time.Now()
		_, err := f.m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeUnloadHang)
		if d := time.Since(start); d < 32*time.Second || d > 33*time.Second {
			t.Fatalf("took %v, want 29 s + 3 s", d)
		}
		if sig := f.procs.Signals(pid); !slices.Equal(sig, []syscall.Signal{syscall.SIGTERM}) {
			t.Fatalf("signals %v, want only SIGTERM", sig)
		}
		k := f.m.Stats().LastKill
		if k.Method != vram.KillSIGTERM || !k.ZombieDetected || !k.Reaped {
			t.Fatalf("kill report %+v, want SIGTERM, zombie detected and reaped", k)
		}
	})
}

// An unkillable runner → Error (GPU_UNRECOVERABLE); only Reset leaves it.
func TestUnkillableRunnerEntersError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.Runner = func(string) vramtest.Proc { return vramtest.Proc{Behavior: vramtest.Unkillable} }
		mustAcquire(t, f.m, coder).Release()
		f.rt.OnUnload = hangUnload
		// The vision swap starts first and hangs in the unload; a coder
		// request queues behind it. (Started the other way round, the coder
		// request could take the resident model first and the vision swap
		// would wait out its lease instead.)
		swap := acquireAsync(f.m, vision)
		synctest.Wait()
		queued := acquireAsync(f.m, coder)
		err := (<-swap).err
		wantCode(t, err, talos.CodeGPUUnrecoverable)
		if !errors.Is(err, talos.ErrProcessKillFailed) {
			t.Fatalf("err %v does not carry the T106 cause", err)
		}
		_ = queued
		s := f.m.Stats()
		if s.State != vram.Error || s.Error == "" || s.LastKill.Method != vram.KillFailed {
			t.Fatalf("stats %+v, want error with a FAILED kill", s)
		}
		before := transitions(f.m)
		// Error accepts only a reset: every Acquire is refused, no transition.
		for _, model := range []string{coder, vision} {
			_, err := f.m.Acquire(context.Background(), model)
			wantCode(t, err, talos.CodeGPUUnrecoverable)
		}
		time.Sleep(5 * time.Minute)
		if !mapsEqual(before, transitions(f.m)) {
			t.Fatalf("transitions moved in Error: %v → %v", before, transitions(f.m))
		}
		// The operator frees the GPU and resets.
		f.rt.Evict(coder)
		f.rt.OnUnload = nil
		f.m.Reset()
		if s := f.m.Stats(); s.State != vram.Idle || s.Error != "" {
			t.Fatalf("after Reset: %+v", s)
		}
		mustAcquire(t, f.m, vision).Release()
		if transitions(f.m)["error->idle"] != 1 {
			t.Fatalf("transitions %v lack error->idle", transitions(f.m))
		}
	})
}

func TestUnloadHangWithoutRunnerLocatorIsError(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		gpu := vramtest.NewGPU(24 * vram.GiB)
		rt := vramtest.NewRuntime(map[string]uint64{coder: 5 * vram.GiB, vision: 7 * vram.GiB}, gpu, nil)
		m, err := vram.New(vram.Config{Models: testModels()}, rt, gpu, nil, vramtest.NewProcesses())
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		mustAcquire(t, m, coder).Release()
		rt.OnUnload = hangUnload
		_, err = m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeGPUUnrecoverable)
		if m.Stats().State != vram.Error {
			t.Fatalf("state %v, want error", m.Stats().State)
		}
	})
}

// An unload counts only when used VRAM dropped by ≥ 80 % of the model's size.
func TestUnloadNeedsVRAMDrop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.Runner = func(string) vramtest.Proc { return vramtest.Proc{Behavior: vramtest.ExitOnTerm} }
		mustAcquire(t, f.m, coder).Release() // used 6 GiB
		// The runtime forgets the model but the memory stays in use for 20 s
		// (a runner slow to exit), then 4.5 GiB (90 %) is freed.
		f.rt.OnUnload = func(ctx context.Context, model string) error {
			f.rt.Evict(model)
			f.gpu.SetUsed(6 * vram.GiB)
			go func() {
				time.Sleep(20 * time.Second)
				f.gpu.SetUsed(6*vram.GiB - 4608*vram.MiB)
			}()
			return nil
		}
		start := time.Now()
		l := mustAcquire(t, f.m, vision)
		l.Release()
		if d := time.Since(start); d < 20*time.Second || d > 21*time.Second {
			t.Fatalf("swap took %v, want ≈ 20 s (waiting for the VRAM to drop)", d)
		}
		if f.m.Stats().LastKill != nil {
			t.Fatal("the ladder ran although the unload completed in time")
		}
	})
}

func TestPostKillDiagnosticsCritical(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.Runner = func(model string) vramtest.Proc {
			// The runtime keeps listing the model after its runner died.
			return vramtest.Proc{Behavior: vramtest.ExitOnTerm, OnExit: func() {
				go func() { time.Sleep(time.Millisecond); _ = f.rt.Load(context.Background(), model) }()
			}}
		}
		mustAcquire(t, f.m, coder).Release()
		f.rt.OnUnload = hangUnload
		_, err := f.m.Acquire(context.Background(), vision)
		wantCode(t, err, talos.CodeUnloadHang)
		time.Sleep(61 * time.Second)
		s := f.m.Stats()
		if s.State != vram.Error {
			t.Fatalf("state %v after failed diagnostics, want error", s.State)
		}
		found := false
		for _, is := range s.LastKill.Diagnostics {
			found = found || (is.Check == "consistency" && is.Critical)
		}
		if !found {
			t.Fatalf("diagnostics %+v lack the critical consistency issue", s.LastKill.Diagnostics)
		}
	})
}

func TestCloseFailsWaiters(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l := mustAcquire(t, f.m, coder)
		ch := acquireAsync(f.m, vision)
		synctest.Wait()
		f.m.Close()
		if r := <-ch; !errors.Is(r.err, vram.ErrClosed) {
			t.Fatalf("waiter got %v, want ErrClosed", r.err)
		}
		if _, err := f.m.Acquire(context.Background(), coder); !errors.Is(err, vram.ErrClosed) {
			t.Fatalf("Acquire after Close: %v", err)
		}
		l.Release()
	})
}

func TestConfigValidation(t *testing.T) {
	rt := vramtest.NewRuntime(nil, nil, nil)
	gpu := vramtest.NewGPU(vram.GiB)
	for name, cfg := range map[string]vram.Config{
		"negative timeout": {AcquireTimeout: -time.Second},
		"ratio above 1":    {UnloadDropRatio: 1.5},
		"empty models":     {Models: map[string]vram.Model{}},
		"empty name":       {Models: map[string]vram.Model{"": {MinFree: 1}}},
		"zero model":       {Models: map[string]vram.Model{"x": {}}},
	} {
		if _, err := vram.New(cfg, rt, gpu, nil, nil); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("%s: err = %v, want T010", name, err)
		}
	}
	if _, err := vram.New(vram.Config{}, nil, gpu, nil, nil); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("nil runtime: %v", err)
	}
	if _, err := vram.New(vram.Config{}, rt, nil, nil, nil); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("nil GPU: %v", err)
	}
	_, err := vram.New(vram.Config{}, nil, nil, nil, nil)
	for _, want := range []string{"runtime is nil", "GPU is nil"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("nil runtime and GPU: %v, want both named (%q)", err, want)
		}
	}
}

func mapsEqual(a, b map[string]uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A request for another model while one is loading does not
// start a second load; it queues and is served after the first model's
// leases are released.
func TestRequestDuringLoadQueues(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.OnLoad = func(ctx context.Context, model string) error { time.Sleep(5 * time.Second); return nil }
		cch := acquireAsync(f.m, coder)
		time.Sleep(time.Second)
		vch := acquireAsync(f.m, vision)
		synctest.Wait()
		if s := f.m.Stats(); s.State != vram.Loading || s.Model != coder || s.Waiters != 2 {
			t.Fatalf("during the coder load: %+v, want loading coder with 2 waiters", s)
		}
		c := <-cch
		if c.err != nil {
			t.Fatal(c.err)
		}
		synctest.Wait()
		if s := f.m.Stats(); s.State != vram.Ready || s.Model != coder || s.Waiters != 1 {
			t.Fatalf("after the coder load: %+v, want ready coder, vision waiting", s)
		}
		c.l.Release()
		v := <-vch
		if v.err != nil {
			t.Fatal(v.err)
		}
		v.l.Release()
		want := map[string]uint64{"idle->loading": 2, "loading->ready": 2, "ready->unloading": 1, "unloading->idle": 1}
		if got := transitions(f.m); !mapsEqual(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	})
}

// A runtime that keeps several models (OLLAMA_MAX_LOADED_MODELS > 1) is still
// capped at one by the mutex.
func TestAtMostOneModelEvenIfRuntimeAllowsMore(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		f.rt.AllowMany = true
		for _, model := range []string{coder, vision, coder, vision} {
			l := mustAcquire(t, f.m, model)
			res, _ := f.rt.Resident(context.Background())
			if len(res) != 1 || res[0] != model {
				t.Fatalf("resident %v while leasing %s, want only it", res, model)
			}
			l.Release()
		}
	})
}

// A swap to a model the runtime does not have is refused before the resident
// model is unloaded.
func TestSwapToMissingModelChangesNothing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{Models: map[string]vram.Model{
			coder:   {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB},
			"ghost": {MinFree: 1 * vram.GiB},
		}})
		mustAcquire(t, f.m, coder).Release()
		_, err := f.m.Acquire(context.Background(), "ghost")
		wantCode(t, err, talos.CodeLocalModelLoad)
		if s := f.m.Stats(); s.State != vram.Ready || s.Model != coder || f.rt.Unloads() != 0 || !f.rt.IsResident(coder) {
			t.Fatalf("refused swap changed state: %+v unloads=%d", s, f.rt.Unloads())
		}
	})
}

// After a daemon restart the runtime may still hold a model the mutex never
// loaded: it is taken over and swapped out, never left beside the new one.
func TestStrayResidentModelIsSwappedOut(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		if err := f.rt.Load(context.Background(), coder); err != nil { // loaded before the mutex existed
			t.Fatal(err)
		}
		l := mustAcquire(t, f.m, vision)
		l.Release()
		if f.rt.IsResident(coder) || !f.rt.IsResident(vision) {
			t.Fatalf("coder=%v vision=%v, want only vision", f.rt.IsResident(coder), f.rt.IsResident(vision))
		}
		want := map[string]uint64{"idle->ready": 1, "ready->unloading": 1, "unloading->idle": 1, "idle->loading": 1, "loading->ready": 1}
		if got := transitions(f.m); !mapsEqual(got, want) {
			t.Fatalf("transitions %v, want %v", got, want)
		}
	})
}

// The runtime dropped the resident model on its own (keep-alive expired):
// the swap completes at once instead of waiting for a VRAM drop that
// already happened and killing a runner that no longer exists.
func TestSwapAfterRuntimeExpiredModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		mustAcquire(t, f.m, coder).Release()
		f.rt.Evict(coder)           // Ollama's keep_alive ran out...
		f.gpu.SetUsed(4 * vram.GiB) // ...and the desktop grew meanwhile
		start := time.Now()
		l := mustAcquire(t, f.m, vision)
		l.Release()
		if d := time.Since(start); d > time.Second {
			t.Fatalf("swap took %v, want immediate", d)
		}
		if s := f.m.Stats(); s.LastKill != nil || s.State != vram.Ready || s.Model != vision {
			t.Fatalf("stats %+v (kill %+v)", s, s.LastKill)
		}
	})
}

// The runtime dropped the model but used VRAM never fell (another program
// took memory meanwhile) and no runner is left: the unload is accepted after
// the hang threshold instead of failing the mutex.
func TestUnloadWithoutDropAndWithoutRunner(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		mustAcquire(t, f.m, coder).Release() // used 6 GiB
		f.rt.OnUnload = func(ctx context.Context, model string) error {
			f.rt.Evict(model)
			f.gpu.SetUsed(6 * vram.GiB) // someone else grabbed the freed memory
			return nil
		}
		start := time.Now()
		l := mustAcquire(t, f.m, vision)
		l.Release()
		if d := time.Since(start); d != vram.DefaultUnloadHang {
			t.Fatalf("swap took %v, want the %v hang threshold", d, vram.DefaultUnloadHang)
		}
		if s := f.m.Stats(); s.State != vram.Ready || s.LastKill != nil {
			t.Fatalf("stats %+v", s)
		}
	})
}
