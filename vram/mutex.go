package vram

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc"
)

// Runtime loads and unloads models (llm/ollama implements it: load =
// generate with keep_alive, unload = keep_alive 0, residency from /api/ps).
type Runtime interface {
	// Load makes model resident. It returns when the model is loaded.
	Load(ctx context.Context, model string) error
	// Unload asks the runtime to release model.
	Unload(ctx context.Context, model string) error
	// Resident lists the models the runtime holds in memory.
	Resident(ctx context.Context) ([]string, error)
}

// Catalog may be implemented by a Runtime that can say whether it has a
// model at all. When it is, a model the runtime does not know is refused
// before anything changes.
type Catalog interface {
	Has(ctx context.Context, model string) (bool, error)
}

// cooldownLogEvery is the period of the cooldown's progress log.
const cooldownLogEvery = 10 * time.Second

// ErrClosed is returned by Acquire after Close.
var ErrClosed = errors.New("vram: the mutex is closed")

// Mutex arbitrates GPU memory between local models: any number of leases may
// share the resident model; a request for another model waits (first come,
// first served) until every lease is released, then the resident model is
// unloaded and the requested one loaded.
type Mutex struct {
	cfg    Config
	rt     Runtime
	gpu    GPU
	runner RunnerLocator
	log    *slog.Logger
	ladder ladder

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu            sync.Mutex
	state         State
	model         string
	baseline      uint64 // used VRAM before the current model was loaded
	hasBaseline   bool
	footprint     uint64 // VRAM the resident model took, measured after its load (0: unknown)
	leases        int
	queue         []*waiter
	busy          bool // the worker goroutine runs
	closed        bool
	cooldownUntil time.Time
	errCause      error
	lastKill      *KillReport
	lastReading   *Reading

	grants, timeouts, loads, loadFailures, unloads uint64
	refusals                                       map[string]uint64
	kills                                          map[KillMethod]uint64
	transitions                                    map[Transition]uint64
	wait                                           histogram
}

type waiter struct {
	model     string
	enqueued  time.Time
	done      chan struct{}
	lease     *Lease
	err       error
	committed bool // a transition runs on its behalf: the queue timeout no longer applies
}

// Lease is the right to use the resident model until Release.
type Lease struct {
	m        *Mutex
	model    string
	released atomic.Bool
}

// Model returns the model the lease is for.
func (l *Lease) Model() string { return l.model }

// Release gives the lease back. It is safe to call more than once.
func (l *Lease) Release() {
	if l == nil || !l.released.CompareAndSwap(false, true) {
		return
	}
	m := l.m
	m.mu.Lock()
	m.leases--
	if m.leases == 0 && len(m.queue) > 0 {
		m.kickLocked()
	}
	m.mu.Unlock()
}

// New returns a Mutex in state Idle. rt is the model runtime (for example
// llm/ollama) and gpu reads GPU memory (for example nvml.Detect()); both are
// required, and loads are refused while gpu cannot be read. runner finds the
// process to kill when an unload hangs; nil means a hung unload cannot be
// resolved and puts the mutex in Error. procs signals and inspects that
// process; nil means proc.OS().
func New(cfg Config, rt Runtime, gpu GPU, runner RunnerLocator, procs Processes) (*Mutex, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	var missing []string
	if rt == nil {
		missing = append(missing, "the runtime is nil: pass the model runtime (for example llm/ollama)")
	}
	if gpu == nil {
		missing = append(missing, "the GPU is nil: pass a GPU reader (for example nvml.Detect())")
	}
	if len(missing) > 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "vram.New", "%s", strings.Join(missing, "; "))
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if procs == nil {
		procs = proc.OS()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Mutex{
		cfg:         cfg,
		rt:          rt,
		gpu:         gpu,
		runner:      runner,
		log:         log,
		ladder:      ladder{procs: procs, grace: cfg.KillGrace, verify: cfg.KillVerify, poll: cfg.PollInterval, log: log, self: os.Getpid()},
		ctx:         ctx,
		cancel:      cancel,
		refusals:    map[string]uint64{},
		kills:       map[KillMethod]uint64{},
		transitions: map[Transition]uint64{},
	}, nil
}

// Acquire returns a lease on model, loading it first if needed. Requests are
// served in arrival order: once a request for another model waits, new
// requests for the resident model queue behind it.
//
// A request that waits in the queue longer than Config.AcquireTimeout gets
// T100 and changes nothing. Once the request's own load (or swap) has begun,
// Acquire returns when it ends, bounded by the unload and load timeouts.
// Errors: T203 unknown model or failed load, T102 not enough free VRAM, T110
// GPU unreadable, T105 the unload hung and the runner was killed (retry after
// the cooldown), T107 the mutex is in Error (an operator must call Reset).
func (m *Mutex) Acquire(ctx context.Context, model string) (*Lease, error) {
	const op = "vram.Acquire"
	if _, ok := m.cfg.Models[model]; !ok {
		m.mu.Lock()
		m.refusals["unknown_model"]++
		m.mu.Unlock()
		return nil, talos.Errorf(talos.CodeLocalModelLoad, op, "model %q is not configured: use one of %s, or add it to vram Config.Models", model, strings.Join(m.cfg.modelNames(), ", "))
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, ErrClosed
	}
	if m.state == Error {
		err := m.errorStateLocked(op)
		m.refusals["error_state"]++
		m.mu.Unlock()
		return nil, err
	}
	if m.state == Ready && m.model == model && len(m.queue) == 0 {
		m.leases++
		m.grants++
		m.wait.counts[0]++
		m.wait.count++
		m.mu.Unlock()
		return &Lease{m: m, model: model}, nil
	}
	w := &waiter{model: model, enqueued: time.Now(), done: make(chan struct{})}
	m.queue = append(m.queue, w)
	m.kickLocked()
	m.mu.Unlock()

	timer := time.NewTimer(m.cfg.AcquireTimeout)
	defer timer.Stop()
	timeout := timer.C
	for {
		select {
		case <-w.done:
			return w.lease, w.err
		case <-ctx.Done():
			if l, err, ok := m.leave(w); ok {
				return l, err
			}
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, talos.E(talos.CodeVRAMTimeout, op, fmt.Sprintf("gave up waiting for model %q: the caller's deadline passed", model), ctx.Err())
			}
			return nil, ctx.Err()
		case <-timeout:
			m.mu.Lock()
			if w.committed {
				// Its own transition runs; that has its own timeouts.
				m.mu.Unlock()
				timeout = nil
				continue
			}
			m.mu.Unlock()
			if l, err, ok := m.leave(w); ok {
				return l, err
			}
			m.mu.Lock()
			m.timeouts++
			st, cur := m.state, m.model
			m.mu.Unlock()
			return nil, talos.Errorf(talos.CodeVRAMTimeout, op, "waited %v for model %q while the GPU was %s %s; nothing was changed: retry later or raise Config.AcquireTimeout", m.cfg.AcquireTimeout, model, st, cur)
		}
	}
}

// leave removes w from the queue. If w was already served, it returns its
// result with ok = true.
func (m *Mutex) leave(w *waiter) (*Lease, error, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	select {
	case <-w.done:
		return w.lease, w.err, true
	default:
	}
	if i := slices.Index(m.queue, w); i >= 0 {
		m.queue = slices.Delete(m.queue, i, i+1)
	}
	// The head may have changed: the next request may be servable now.
	m.kickLocked()
	return nil, nil, false
}

func (m *Mutex) errorStateLocked(op string) error {
	return talos.E(talos.CodeGPUUnrecoverable, op, "the VRAM mutex is in Error (GPU_UNRECOVERABLE): a model runner could not be killed; free the GPU (stop the runtime or reboot), then call Reset", m.errCause)
}

// Reset leaves the Error state: the operator asserts the GPU is usable again.
// In any other state Reset does nothing.
func (m *Mutex) Reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state != Error {
		return
	}
	m.log.Warn("vram: operator reset", "previous_error", m.errCause)
	m.setStateLocked(Idle, "")
	m.errCause = nil
	m.cooldownUntil = time.Time{}
	m.hasBaseline, m.footprint = false, 0
	m.kickLocked()
}

// Close fails every waiting request with ErrClosed and stops background
// work. Leases already granted stay valid until released.
func (m *Mutex) Close() error {
	m.mu.Lock()
	if !m.closed {
		m.closed = true
		m.failAllLocked(ErrClosed)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

// Stats returns a snapshot of the mutex.
func (m *Mutex) Stats() Stats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Stats{
		State:         m.state,
		Model:         m.model,
		Leases:        m.leases,
		Waiters:       len(m.queue),
		CooldownUntil: m.cooldownUntil,
		Grants:        m.grants,
		Timeouts:      m.timeouts,
		Loads:         m.loads,
		LoadFailures:  m.loadFailures,
		Unloads:       m.unloads,
		Refusals:      make(map[string]uint64, len(m.refusals)),
		Kills:         make(map[KillMethod]uint64, len(m.kills)),
		Transitions:   make(map[Transition]uint64, len(m.transitions)),
		Wait:          m.wait.snapshot(),
	}
	if m.errCause != nil {
		s.Error = m.errCause.Error()
	}
	for k, v := range m.refusals {
		s.Refusals[k] = v
	}
	for k, v := range m.kills {
		s.Kills[k] = v
	}
	for k, v := range m.transitions {
		s.Transitions[k] = v
	}
	if m.lastKill != nil {
		k := *m.lastKill
		k.Signals = slices.Clone(k.Signals)
		k.Diagnostics = slices.Clone(k.Diagnostics)
		s.LastKill = &k
	}
	if m.lastReading != nil {
		r := *m.lastReading
		s.LastReading = &r
	}
	return s
}

// setStateLocked records a transition. An edge outside Transitions() is a
// bug: it is logged and counted but still taken, so the tests catch it.
func (m *Mutex) setStateLocked(to State, model string) {
	t := Transition{m.state, to}
	if _, ok := allowed[t]; !ok {
		m.log.Error("vram: transition outside the state table (bug)", "transition", t.String())
	}
	m.transitions[t]++
	m.log.Info("vram: transition", "from", m.state.String(), "to", to.String(), "model", model)
	m.state, m.model = to, model
}

// grant hands a lease to w and removes it from the queue head.
func (m *Mutex) grantLocked(w *waiter) {
	m.leases++
	m.grants++
	m.wait.observe(time.Since(w.enqueued))
	w.lease = &Lease{m: m, model: w.model}
	close(w.done)
}

func (m *Mutex) failLocked(w *waiter, err error) {
	if i := slices.Index(m.queue, w); i >= 0 {
		m.queue = slices.Delete(m.queue, i, i+1)
	}
	w.err = err
	close(w.done)
}

func (m *Mutex) failAllLocked(err error) {
	for _, w := range m.queue {
		w.err = err
		close(w.done)
	}
	m.queue = nil
}

// kickLocked starts the worker if there is something to do.
func (m *Mutex) kickLocked() {
	if m.busy || m.closed || len(m.queue) == 0 {
		return
	}
	switch m.state {
	case Ready:
		if m.queue[0].model != m.model && m.leases > 0 {
			return // the swap waits for the last Release
		}
	case Loading, Unloading:
		return // the worker owns these
	}
	m.busy = true
	m.wg.Add(1)
	go m.work()
}

type actionKind int

const (
	actNone actionKind = iota
	actLoad
	actSwap
)

// next decides the worker's next step. It runs with m.mu held and clears
// busy when there is nothing to do.
func (m *Mutex) nextLocked() (actionKind, *waiter) {
	for {
		if m.closed || len(m.queue) == 0 {
			m.busy = false
			return actNone, nil
		}
		head := m.queue[0]
		switch m.state {
		case Error:
			m.failAllLocked(m.errorStateLocked("vram.Acquire"))
			m.busy = false
			return actNone, nil
		case Ready:
			if head.model == m.model {
				// Serve the run of requests for the resident model at the head.
				for len(m.queue) > 0 && m.queue[0].model == m.model {
					w := m.queue[0]
					m.queue = m.queue[1:]
					m.grantLocked(w)
				}
				continue
			}
			if m.leases > 0 {
				m.busy = false
				return actNone, nil
			}
			head.committed = true
			return actSwap, head
		case Idle:
			head.committed = true
			return actLoad, head
		default:
			m.log.Error("vram: worker found a transient state (bug)", "state", m.state.String())
			m.busy = false
			return actNone, nil
		}
	}
}

// work runs transitions until the queue needs nothing more.
func (m *Mutex) work() {
	defer m.wg.Done()
	for {
		m.mu.Lock()
		act, w := m.nextLocked()
		m.mu.Unlock()
		switch act {
		case actNone:
			return
		case actSwap:
			m.swap(w)
		case actLoad:
			m.load(w)
		}
	}
}

// stillHead reports whether the head of the queue still wants model.
func (m *Mutex) stillHeadLocked(model string) bool {
	return len(m.queue) > 0 && m.queue[0].model == model
}

// readGPU reads the GPU and remembers the reading for Stats.
func (m *Mutex) readGPU() (Reading, error) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancel()
	r, err := m.gpu.Memory(ctx)
	if err == nil || r.Stale {
		m.mu.Lock()
		m.lastReading = &r
		m.mu.Unlock()
	}
	return r, err
}

// MaxStaleReading is how old a last-known GPU reading may be for a load or
// swap decision when the reader reports a parse error (PARSE_ERROR →
// USE_LAST_KNOWN). Older readings, and every other kind of
// failure, refuse the load.
const MaxStaleReading = 30 * time.Second

// readGPUForDecision is readGPU for load and swap decisions: after a parse
// error it uses the reader's last known reading when that is recent enough.
// The unload check never does: it must see memory come back.
func (m *Mutex) readGPUForDecision() (Reading, error) {
	r, err := m.readGPU()
	if err == nil || !r.Stale || r.At.IsZero() || HandlingFor(KindOf(err)).Action != ActionUseLastKnown {
		return r, err
	}
	if age := time.Since(r.At); age <= MaxStaleReading {
		m.log.Warn("vram: GPU reading failed to parse; deciding on the last known reading", "age", age.Round(time.Millisecond).String(), "err", err)
		return r, nil
	}
	return r, err
}

func (m *Mutex) resident(model string) (bool, error) {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	defer cancel()
	list, err := m.rt.Resident(ctx)
	if err != nil {
		return false, err
	}
	return slices.Contains(list, model), nil
}

// refuse fails w (still at the head) and counts the reason.
func (m *Mutex) refuse(w *waiter, reason string, err error) {
	m.mu.Lock()
	m.refusals[reason]++
	m.failLocked(w, err)
	m.mu.Unlock()
}

// swap unloads the resident model for w, after checking that the requested
// model would then fit. The load itself follows in the next loop of work.
func (m *Mutex) swap(w *waiter) {
	const op = "vram.Acquire"
	m.mu.Lock()
	from := m.model
	m.mu.Unlock()
	want := m.cfg.Models[w.model]
	if !m.runtimeHas(w) {
		return
	}
	r, err := m.readGPUForDecision()
	if err != nil {
		m.refuse(w, "gpu_unreadable", talos.E(talos.CodeGPUQuery, op, fmt.Sprintf("cannot read GPU memory to swap %q for %q; nothing was changed", from, w.model), err))
		return
	}
	fromSize := m.residentSize(from)
	if free := r.Free() + fromSize; free <= want.MinFree {
		m.refuse(w, "vram", talos.Errorf(talos.CodeOOMGPU, op, "model %q needs more than %s free VRAM; even after unloading %q only about %s would be free (used %s of %s); nothing was changed",
			w.model, gb(want.MinFree), from, gb(free), gb(r.Used), gb(r.Total)))
		return
	}
	m.mu.Lock()
	if !m.stillHeadLocked(w.model) || m.leases > 0 || m.state != Ready {
		m.mu.Unlock()
		return // the requester left, or a lease slipped in: decide again
	}
	m.setStateLocked(Unloading, from)
	m.mu.Unlock()

	var target uint64
	var hasTarget bool
	drop := uint64(float64(fromSize) * m.cfg.UnloadDropRatio)
	listed, lerr := m.resident(from)
	switch {
	case lerr == nil && !listed:
		// Already gone (the runtime's keep-alive expired): its memory was
		// freed before this reading, so only residency is checked.
		m.log.Info("vram: the model to unload is no longer resident", "model", from)
	case r.Used >= drop:
		target, hasTarget = r.Used-drop, true
	case m.hasBaselineValue():
		target, hasTarget = m.baselineValue()+fromSize-drop, true
	}
	m.unload(from, target, hasTarget, w)
}

// residentSize is the VRAM the resident model is taken to occupy: its
// configured Size, else what it was measured to take after its load, else
// its MinFree. The measurement matters when only MinFree is configured
// (TALOS_VRAM_MODELS gives one number per model): a model smaller than its
// MinFree would otherwise never show the expected drop on unload, and every
// swap would wait for the hang threshold.
func (m *Mutex) residentSize(model string) uint64 {
	c := m.cfg.Models[model]
	if c.Size != 0 {
		return c.Size
	}
	m.mu.Lock()
	fp, resident := m.footprint, m.model == model
	m.mu.Unlock()
	if resident && fp > 0 {
		return fp
	}
	return c.MinFree
}

// unloadDone records a completed unload: Idle, no baseline or footprint.
func (m *Mutex) unloadDone() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unloadDoneLocked()
}

func (m *Mutex) unloadDoneLocked() {
	m.unloads++
	m.setStateLocked(Idle, "")
	m.hasBaseline, m.footprint = false, 0
}

func (m *Mutex) hasBaselineValue() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.hasBaseline
}

func (m *Mutex) baselineValue() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.baseline
}

// runtimeHas refuses w when the runtime implements Catalog and does not
// have its model. Errors of the Catalog itself let the request through (the
// load will fail cleanly if the model is really missing).
func (m *Mutex) runtimeHas(w *waiter) bool {
	c, ok := m.rt.(Catalog)
	if !ok {
		return true
	}
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	has, err := c.Has(ctx, w.model)
	cancel()
	if err == nil && !has {
		m.refuse(w, "unknown_model", talos.Errorf(talos.CodeLocalModelLoad, "vram.Acquire", "the runtime does not have model %q: pull it first; nothing was changed", w.model))
		return false
	}
	return true
}

// adoptStray handles a model the runtime holds although the mutex is Idle
// (the daemon restarted, or someone else loaded it): if another configured
// model is resident, the mutex takes it over as Ready so that the normal
// swap unloads it before target is loaded. It reports whether it did.
func (m *Mutex) adoptStray(target string) bool {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
	list, err := m.rt.Resident(ctx)
	cancel()
	if err != nil {
		return false
	}
	slices.Sort(list)
	for _, name := range list {
		if _, ok := m.cfg.Models[name]; !ok || name == target {
			continue
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		if m.state != Idle || !m.stillHeadLocked(target) {
			return false
		}
		m.log.Warn("vram: the runtime holds a model the mutex did not load; taking it over to unload it", "model", name, "wanted", target)
		m.setStateLocked(Ready, name)
		m.hasBaseline, m.footprint = false, 0
		return true
	}
	return false
}

// load loads w.model from Idle.
func (m *Mutex) load(w *waiter) {
	const op = "vram.Acquire"
	model := w.model
	want := m.cfg.Models[model]
	if !m.runtimeHas(w) {
		return
	}
	if m.adoptStray(model) {
		return // Ready(stray) now: the next loop swaps it out
	}
	r, err := m.readGPUForDecision()
	if err != nil {
		m.refuse(w, "gpu_unreadable", talos.E(talos.CodeGPUQuery, op, fmt.Sprintf("cannot read GPU memory before loading %q; nothing was changed", model), err))
		return
	}
	if r.Free() <= want.MinFree {
		m.refuse(w, "vram", talos.Errorf(talos.CodeOOMGPU, op, "model %q needs more than %s free VRAM, but only %s is free (used %s of %s); free GPU memory and retry; nothing was changed",
			model, gb(want.MinFree), gb(r.Free()), gb(r.Used), gb(r.Total)))
		return
	}
	m.mu.Lock()
	if !m.stillHeadLocked(model) || m.state != Idle {
		m.mu.Unlock()
		return
	}
	m.setStateLocked(Loading, model)
	m.baseline, m.hasBaseline = r.Used, true
	m.mu.Unlock()

	err = m.callLoad(model)
	if err == nil {
		var ok bool
		ok, err = m.resident(model)
		if err == nil && !ok {
			err = errors.New("the runtime reported success but does not list the model as resident")
		}
	}
	if err == nil {
		// Measure what the model took; an unreadable GPU leaves it unknown.
		var fp uint64
		if after, rerr := m.readGPU(); rerr == nil && after.Used > r.Used {
			fp = after.Used - r.Used
		}
		m.mu.Lock()
		m.loads++
		m.setStateLocked(Ready, model)
		m.footprint = fp
		m.mu.Unlock()
		return // the next loop of work grants the leases
	}

	lerr := talos.E(talos.CodeLocalModelLoad, op, fmt.Sprintf("loading model %q failed; it was unloaded again, retry later", model), err)
	m.log.Error("vram: load failed, emergency unload", "model", model, "err", err)
	m.mu.Lock()
	m.loadFailures++
	// Every request for this model at the head shares the failure.
	for len(m.queue) > 0 && m.queue[0].model == model {
		m.refusals["load_failed"]++
		m.failLocked(m.queue[0], lerr)
	}
	m.setStateLocked(Unloading, model)
	base := m.baseline
	m.mu.Unlock()
	drop := uint64(float64(want.size()) * m.cfg.UnloadDropRatio)
	m.unload(model, base+want.size()-drop, true, nil)
}

// callLoad runs Runtime.Load with the load timeout, even if the runtime
// ignores its context.
func (m *Mutex) callLoad(model string) error {
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.LoadTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.rt.Load(ctx, model) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("load did not finish within %v: %w", m.cfg.LoadTimeout, ctx.Err())
	}
}

// unload unloads model and verifies it (the runtime no longer lists it and,
// when hasTarget, used VRAM is at most target). A hang past UnloadHang runs
// the kill ladder. owner, if not nil, is the request the unload serves; it
// gets the error when the unload fails.
func (m *Mutex) unload(model string, target uint64, hasTarget bool, owner *waiter) {
	const op = "vram.unload"
	start := time.Now()
	deadline := start.Add(m.cfg.UnloadHang)
	ctx, cancel := context.WithTimeout(m.ctx, m.cfg.UnloadHang)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.rt.Unload(ctx, model) }()
	returned := false
	for {
		if !returned {
			select {
			case err := <-done:
				returned = true
				if err != nil {
					m.log.Warn("vram: runtime unload returned an error; still waiting for the model to go", "model", model, "err", err)
				}
			default:
			}
		}
		if returned && m.unloadComplete(model, target, hasTarget) {
			m.unloadDone()
			return
		}
		if m.ctx.Err() != nil {
			return // closed
		}
		if !time.Now().Before(deadline) {
			break
		}
		select {
		case err := <-done:
			returned = true
			if err != nil {
				m.log.Warn("vram: runtime unload returned an error; still waiting for the model to go", "model", model, "err", err)
			}
		case <-time.After(min(m.cfg.PollInterval, time.Until(deadline)+time.Millisecond)):
		case <-m.ctx.Done():
			return
		}
	}
	m.hung(model, time.Since(start), owner)
}

// unloadComplete checks the unload's completion condition.
func (m *Mutex) unloadComplete(model string, target uint64, hasTarget bool) bool {
	listed, err := m.resident(model)
	if err != nil || listed {
		return false
	}
	if !hasTarget {
		return true
	}
	r, err := m.readGPU()
	if err != nil {
		m.log.Warn("vram: GPU unreadable while verifying an unload; accepting the runtime's word", "model", model, "err", err)
		return true
	}
	return r.Used <= target
}

// hung runs the kill ladder on the runner of model, then the cooldown and
// the post-kill diagnostics.
func (m *Mutex) hung(model string, after time.Duration, owner *waiter) {
	const op = "vram.unload"
	// A model the runtime no longer lists is not ours to kill for: whatever
	// runner process is left may hold another client's model (an embedding
	// model, say), and the VRAM that did not come back is someone else's.
	if listed, err := m.resident(model); err == nil && !listed {
		m.log.Warn("vram: unload verified by the runtime only; used VRAM did not drop as expected, no runner is killed", "model", model, "after", after.Round(time.Millisecond).String())
		m.unloadDone()
		return
	}
	pid, perr := 0, error(nil)
	if m.runner == nil {
		perr = errors.New("no RunnerLocator configured")
	} else {
		ctx, cancel := context.WithTimeout(m.ctx, m.cfg.CallTimeout)
		pid, perr = m.runner.RunnerPID(ctx, model)
		cancel()
		if perr == nil && pid <= 0 {
			perr = fmt.Errorf("runner pid %d is not a process id", pid)
		}
	}
	m.log.Error("VRAM_MUTEX_UNLOAD_HANG", "model", model, "pid", pid, "hang_duration", after.Round(time.Millisecond).String(), "action", "EMERGENCY_KILL")
	var rep KillReport
	var kerr error
	if perr != nil {
		kerr = talos.E(talos.CodeProcessKillFailed, op, fmt.Sprintf("unload of %q hung for %v and its runner process cannot be found", model, after.Round(time.Millisecond)), perr)
		rep = KillReport{Model: model, Started: time.Now(), Method: KillFailed, Error: kerr.Error()}
	} else {
		rep, kerr = m.ladder.kill(pid, model)
	}

	m.mu.Lock()
	m.kills[rep.Method]++
	if kerr != nil {
		m.lastKill = &rep
		m.errCause = kerr
		m.setStateLocked(Error, "")
		m.failAllLocked(m.errorStateLocked("vram.Acquire"))
		m.mu.Unlock()
		return
	}
	m.unloadDoneLocked()
	m.cooldownUntil = time.Now().Add(m.cfg.Cooldown)
	rep.CooldownUntil = m.cooldownUntil
	m.lastKill = &rep
	if owner != nil {
		select {
		case <-owner.done:
		default:
			m.refusals["unload_hang"]++
			m.failLocked(owner, talos.Errorf(talos.CodeUnloadHang, "vram.Acquire", "unloading %q hung for %v; its runner (pid %d) was stopped with %s; loads resume after a %v cooldown, retry then",
				model, after.Round(time.Millisecond), pid, rep.Method, m.cfg.Cooldown))
		}
	}
	m.mu.Unlock()

	// Cooldown: nothing loads until it ends; progress is
	// logged every 10 s.
	end := time.Now().Add(m.cfg.Cooldown)
	t := time.NewTimer(m.cfg.Cooldown)
	tick := time.NewTicker(cooldownLogEvery)
	defer tick.Stop()
cooldown:
	for {
		select {
		case <-t.C:
			break cooldown
		case <-tick.C:
			m.log.Info("vram: post-kill cooldown", "model", model, "remaining", time.Until(end).Round(time.Second).String())
		case <-m.ctx.Done():
			t.Stop()
			return
		}
	}
	issues := m.diagnose(model, pid)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cooldownUntil = time.Time{}
	if m.lastKill != nil {
		m.lastKill.Diagnostics = issues
	}
	for _, is := range issues {
		if is.Critical {
			m.errCause = talos.Errorf(talos.CodeGPUUnrecoverable, op, "post-kill diagnostics failed: %s: %s", is.Check, is.Detail)
			m.setStateLocked(Error, "")
			m.failAllLocked(m.errorStateLocked("vram.Acquire"))
			return
		}
	}
}

// diagnose runs the post-kill checks that are possible from
// outside the runner: GPU readable, runner not a zombie, runtime and mutex
// consistent. (SHM and FD checks need thresholds the spec never defines;
// defragmentation is impossible from outside the owning process.)
func (m *Mutex) diagnose(model string, pid int) []Issue {
	var issues []Issue
	if _, err := m.readGPU(); err != nil {
		issues = append(issues, Issue{Check: "gpu_query", Critical: true, Detail: "GPU not accessible post-kill: " + err.Error()})
	}
	if pid > 0 {
		if info, err := m.ladder.procs.Stat(pid); err == nil && info.Zombie() {
			issues = append(issues, Issue{Check: "zombie", Detail: fmt.Sprintf("runner pid %d is a zombie its parent (pid %d) has not reaped", pid, info.PPID)})
		}
	}
	if listed, err := m.resident(model); err != nil {
		issues = append(issues, Issue{Check: "runtime", Detail: "cannot list resident models: " + err.Error()})
	} else if listed {
		issues = append(issues, Issue{Check: "consistency", Critical: true, Detail: fmt.Sprintf("the runtime still lists %q as resident after its runner was killed", model)})
	}
	m.mu.Lock()
	if m.state != Idle || m.leases != 0 {
		issues = append(issues, Issue{Check: "mutex", Critical: true, Detail: fmt.Sprintf("mutex is %s with %d leases during cooldown, want idle with 0", m.state, m.leases)})
	}
	m.mu.Unlock()
	return issues
}

func gb(b uint64) string { return fmt.Sprintf("%.1f GB", float64(b)/float64(GiB)) }
