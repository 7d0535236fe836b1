package vram_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// lockedRand is a rand shared by the fakes' hooks.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) intn(n int) int { l.mu.Lock(); defer l.mu.Unlock(); return l.r.IntN(n) }

// TestRandomizedConcurrency runs many goroutines asking for random models
// while loads and unloads fail, hang and need kills at random, and checks the
// invariants after every step:
//   - at most one model is resident in the runtime;
//   - no load or unload runs while a lease is held (on any model);
//   - a lease holder's model stays resident for the whole lease;
//   - leases > 0 only in state Ready;
//   - every Acquire returns: granted, or one of the documented errors;
//   - no goroutine is left behind (the synctest bubble fails on leaks).
func TestRandomizedConcurrency(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprintf("seed%d", seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) { randomRun(t, seed) })
		})
	}
}

func randomRun(t *testing.T, seed uint64) {
	rnd := &lockedRand{r: rand.New(rand.NewPCG(seed, 42))}
	models := []string{coder, vision, "embed"}
	gpu := vramtest.NewGPU(24 * vram.GiB)
	gpu.SetUsed(vram.GiB)
	procs := vramtest.NewProcesses()
	rt := vramtest.NewRuntime(map[string]uint64{coder: 5 * vram.GiB, vision: 7 * vram.GiB, "embed": vram.GiB}, gpu, procs)
	cfg := vram.Config{Models: map[string]vram.Model{
		coder:   {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB},
		vision:  {MinFree: 9 * vram.GiB, Size: 7 * vram.GiB},
		"embed": {MinFree: 2 * vram.GiB, Size: vram.GiB},
	}}
	m, err := vram.New(cfg, rt, gpu, rt, procs)
	if err != nil {
		t.Fatal(err)
	}

	var vmu sync.Mutex
	var violations []string
	violate := func(format string, args ...any) {
		vmu.Lock()
		violations = append(violations, fmt.Sprintf(format, args...))
		vmu.Unlock()
	}
	held := map[string]int{} // leases the test holds, by model
	var hmu sync.Mutex
	heldTotal := func() int {
		hmu.Lock()
		defer hmu.Unlock()
		n := 0
		for _, v := range held {
			n += v
		}
		return n
	}

	rt.Runner = func(model string) vramtest.Proc {
		switch n := rnd.intn(100); {
		case n < 10:
			return vramtest.Proc{Behavior: vramtest.Unkillable}
		case n < 40:
			return vramtest.Proc{Behavior: vramtest.IgnoreTerm, Child: rnd.intn(2) == 0}
		default:
			return vramtest.Proc{Behavior: vramtest.ExitOnTerm, TermDelay: time.Duration(rnd.intn(15)) * time.Second, Child: rnd.intn(2) == 0}
		}
	}
	rt.OnLoad = func(ctx context.Context, model string) error {
		if s := m.Stats(); s.Leases != 0 {
			violate("load of %q with %d leases held", model, s.Leases)
		}
		if n := heldTotal(); n != 0 {
			violate("load of %q while the test holds %d leases", model, n)
		}
		switch n := rnd.intn(100); {
		case n < 10:
			return errors.New("injected load failure")
		case n < 13:
			<-ctx.Done() // load hang → timeout
			return ctx.Err()
		default:
			time.Sleep(time.Duration(rnd.intn(3000)) * time.Millisecond)
			return nil
		}
	}
	rt.OnUnload = func(ctx context.Context, model string) error {
		if s := m.Stats(); s.Leases != 0 {
			violate("unload of %q with %d leases held", model, s.Leases)
		}
		if n := heldTotal(); n != 0 {
			violate("unload of %q while the test holds %d leases", model, n)
		}
		switch n := rnd.intn(100); {
		case n < 4:
			<-ctx.Done() // hang → kill ladder
			return ctx.Err()
		case n < 6:
			return errors.New("injected unload error") // the model stays: hang → ladder
		default:
			time.Sleep(time.Duration(rnd.intn(2000)) * time.Millisecond)
			return nil
		}
	}

	check := func(where string) {
		s := m.Stats()
		if s.Leases > 0 && s.State != vram.Ready {
			violate("%s: %d leases in state %v", where, s.Leases, s.State)
		}
		if s.Leases < 0 || s.Waiters < 0 {
			violate("%s: negative counts %+v", where, s)
		}
		res, _ := rt.Resident(context.Background())
		if len(res) > 1 {
			violate("%s: %d models resident: %v", where, len(res), res)
		}
	}

	allowed := []talos.Code{talos.CodeVRAMTimeout, talos.CodeOOMGPU, talos.CodeLocalModelLoad, talos.CodeUnloadHang, talos.CodeGPUUnrecoverable}
	var grants sync.WaitGroup
	var granted, refused int
	var cmu sync.Mutex
	codes := map[talos.Code]int{}
	const workers, rounds = 16, 12
	for w := range workers {
		grants.Add(1)
		go func() {
			defer grants.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			for i := range rounds {
				model := models[r.IntN(len(models))]
				time.Sleep(time.Duration(r.IntN(20000)) * time.Millisecond)
				l, err := m.Acquire(context.Background(), model)
				check(fmt.Sprintf("worker %d round %d after Acquire(%s)", w, i, model))
				if err != nil {
					code := talos.CodeOf(err)
					ok := false
					for _, c := range allowed {
						ok = ok || code == c
					}
					if !ok {
						violate("Acquire(%s): unexpected error %v", model, err)
					}
					cmu.Lock()
					refused++
					codes[code]++
					cmu.Unlock()
					continue
				}
				hmu.Lock()
				held[model]++
				hmu.Unlock()
				if !rt.IsResident(model) {
					violate("lease on %q granted but the runtime does not list it", model)
				}
				time.Sleep(time.Duration(r.IntN(2000)) * time.Millisecond)
				if !rt.IsResident(model) {
					violate("%q evicted while leased", model)
				}
				hmu.Lock()
				held[model]--
				hmu.Unlock()
				l.Release()
				check(fmt.Sprintf("worker %d round %d after Release(%s)", w, i, model))
				cmu.Lock()
				granted++
				cmu.Unlock()
			}
		}()
	}
	// The operator: when the mutex is in Error, free the GPU and Reset.
	stop := make(chan struct{})
	opDone := make(chan struct{})
	resets := 0
	go func() {
		defer close(opDone)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Second):
			}
			if m.Stats().State == vram.Error {
				res, _ := rt.Resident(context.Background())
				for _, model := range res {
					rt.Evict(model)
				}
				m.Reset()
				resets++
			}
		}
	}()
	grants.Wait()
	close(stop)
	<-opDone
	m.Close()
	check("end")
	checkTransitions(t, m)
	for _, v := range rt.Violations() {
		violate("runtime: %s", v)
	}
	for _, v := range violations {
		t.Error(v)
	}
	s := m.Stats()
	t.Logf("seed %d: granted %d, refused %d %v, resets %d, loads %d, load failures %d, kills %v, transitions %v",
		seed, granted, refused, codes, resets, s.Loads, s.LoadFailures, s.Kills, s.Transitions)
	if granted+refused != workers*rounds {
		t.Errorf("%d grants + %d refusals, want %d Acquire results", granted, refused, workers*rounds)
	}
	if granted == 0 {
		t.Error("nothing was ever granted")
	}
}
