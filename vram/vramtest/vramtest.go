package vramtest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos/proc"
	"github.com/talos-ironclad/talos/vram"
)

// GPU is a fake vram.GPU with settable readings and failures.
type GPU struct {
	mu    sync.Mutex
	used  uint64
	total uint64
	err   error
	calls int
}

// NewGPU returns a GPU with total bytes of memory, none used.
func NewGPU(total uint64) *GPU { return &GPU{total: total} }

// Memory implements vram.GPU.
func (g *GPU) Memory(ctx context.Context) (vram.Reading, error) {
	if err := ctx.Err(); err != nil {
		return vram.Reading{}, &vram.ProbeError{Kind: vram.ProbeTimeout, Source: "fake", Err: err}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	if g.err != nil {
		return vram.Reading{}, g.err
	}
	return vram.Reading{Used: g.used, Total: g.total, Source: "fake", At: time.Now()}, nil
}

// SetUsed sets the used memory.
func (g *GPU) SetUsed(used uint64) { g.mu.Lock(); g.used = used; g.mu.Unlock() }

// Used returns the used memory.
func (g *GPU) Used() uint64 { g.mu.Lock(); defer g.mu.Unlock(); return g.used }

// Fail makes every reading fail with err until Fail(nil).
func (g *GPU) Fail(err error) { g.mu.Lock(); g.err = err; g.mu.Unlock() }

// Calls returns how many readings were asked for.
func (g *GPU) Calls() int { g.mu.Lock(); defer g.mu.Unlock(); return g.calls }

func (g *GPU) add(delta int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if delta < 0 && uint64(-delta) > g.used {
		g.used = 0
		return
	}
	g.used = uint64(int64(g.used) + delta)
}

// Behavior is how a fake process reacts to signals.
type Behavior int

// Behaviors.
const (
	ExitOnTerm Behavior = iota // exits on SIGTERM (after TermDelay)
	IgnoreTerm                 // ignores SIGTERM, dies on SIGKILL
	Unkillable                 // survives SIGKILL too (stuck in the driver)
)

// Proc is one fake process.
type Proc struct {
	PID       int
	Behavior  Behavior
	TermDelay time.Duration // time from SIGTERM to exit for ExitOnTerm
	Child     bool          // our child: becomes a zombie until Reap
	OnExit    func()        // called once when the process exits

	deathAt time.Time
	dead    bool
	reaped  bool
	signals []syscall.Signal
}

// Processes is a fake process table of model runners; it implements
// proc.Processes (and so vram.Processes), and a process's group is itself.
type Processes struct {
	mu    sync.Mutex
	next  int
	procs map[int]*Proc
}

// NewProcesses returns an empty process table.
func NewProcesses() *Processes { return &Processes{next: 1000, procs: map[int]*Proc{}} }

// Spawn adds p (its PID is assigned) and returns the PID.
func (ps *Processes) Spawn(p Proc) int {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.next++
	p.PID = ps.next
	q := p
	ps.procs[p.PID] = &q
	return p.PID
}

// Signals returns the signals pid received, in order.
func (ps *Processes) Signals(pid int) []syscall.Signal {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if p, ok := ps.procs[pid]; ok {
		return slices.Clone(p.signals)
	}
	return nil
}

// Alive reports whether pid is still running.
func (ps *Processes) Alive(pid int) bool {
	ps.mu.Lock()
	p, ok := ps.procs[pid]
	ps.mu.Unlock()
	if !ok {
		return false
	}
	return !ps.settle(p)
}

// settle applies a pending exit and reports whether p is dead.
func (ps *Processes) settle(p *Proc) bool {
	ps.mu.Lock()
	var onExit func()
	if !p.dead && !p.deathAt.IsZero() && !time.Now().Before(p.deathAt) {
		p.dead = true
		onExit = p.OnExit
	}
	dead := p.dead
	ps.mu.Unlock()
	if onExit != nil {
		onExit()
	}
	return dead
}

// exit makes pid exit now, as a runner does after a clean unload.
func (ps *Processes) exit(pid int) {
	ps.mu.Lock()
	p, ok := ps.procs[pid]
	if ok && p.deathAt.IsZero() {
		p.deathAt = time.Now()
	}
	ps.mu.Unlock()
	if ok {
		ps.settle(p)
	}
}

// SignalGroup implements proc.Processes: the group of a fake process is
// the process itself, and pgid <= 1 is refused like a broadcast.
func (ps *Processes) SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return syscall.ESRCH
	}
	return ps.Signal(pgid, sig)
}

// Signal implements proc.Processes; pid <= 0 is refused with ESRCH.
func (ps *Processes) Signal(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return syscall.ESRCH
	}
	ps.mu.Lock()
	p, ok := ps.procs[pid]
	ps.mu.Unlock()
	if !ok || ps.settle(p) {
		return syscall.ESRCH
	}
	ps.mu.Lock()
	p.signals = append(p.signals, sig)
	switch {
	case sig == syscall.SIGTERM && p.Behavior == ExitOnTerm:
		if p.deathAt.IsZero() {
			p.deathAt = time.Now().Add(p.TermDelay)
		}
	case sig == syscall.SIGKILL && p.Behavior != Unkillable:
		p.deathAt = time.Now()
	}
	ps.mu.Unlock()
	ps.settle(p)
	return nil
}

// Stat implements proc.Processes: a running process sleeps (S), an exited
// child is a zombie until Reap, and anything else is proc.ErrGone.
func (ps *Processes) Stat(pid int) (proc.Stat, error) {
	ps.mu.Lock()
	p, ok := ps.procs[pid]
	ps.mu.Unlock()
	if !ok {
		return proc.Stat{}, proc.ErrGone
	}
	dead := ps.settle(p)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	st := proc.Stat{PID: pid, Comm: "fake", PPID: 1, PGRP: pid, StartTime: uint64(pid)}
	switch {
	case !dead:
		st.State = 'S'
	case p.Child && !p.reaped:
		st.State = 'Z' // parent "us"
	default:
		return proc.Stat{}, proc.ErrGone
	}
	return st, nil
}

// Reap implements proc.Processes.
func (ps *Processes) Reap(pid int) (bool, error) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	p, ok := ps.procs[pid]
	if !ok || !p.Child || !p.dead || p.reaped {
		return false, nil
	}
	p.reaped = true
	return true, nil
}

// Runtime is a fake vram.Runtime (and vram.RunnerLocator and vram.Catalog).
// Each load spawns a runner process in Procs; when that process exits the
// model is evicted and its memory returned to GPU.
type Runtime struct {
	// Models maps every model the runtime has to the VRAM it takes.
	Models map[string]uint64
	GPU    *GPU       // optional: loads and unloads change its used memory
	Procs  *Processes // optional: runners are spawned here
	// Runner returns the template of the runner process of a load; nil
	// means ExitOnTerm, not a child.
	Runner func(model string) Proc
	// OnLoad and OnUnload, when set, run before the operation; a non-nil
	// error fails it (nothing changes). They may block on ctx to simulate a
	// hang.
	OnLoad   func(ctx context.Context, model string) error
	OnUnload func(ctx context.Context, model string) error
	// AllowMany lets several models be resident (like OLLAMA_MAX_LOADED_MODELS).
	// Without it, a Load while another model is resident is recorded as a
	// violation and fails.
	AllowMany bool

	mu         sync.Mutex
	resident   []string
	pids       map[string]int
	loads      int
	unloads    int
	violations []string
}

// NewRuntime returns a Runtime with the given models, linked to gpu and procs
// (either may be nil).
func NewRuntime(models map[string]uint64, gpu *GPU, procs *Processes) *Runtime {
	return &Runtime{Models: models, GPU: gpu, Procs: procs, pids: map[string]int{}}
}

// ErrUnknownModel is returned by Load for a model not in Models.
var ErrUnknownModel = errors.New("vramtest: unknown model")

// Has implements vram.Catalog.
func (r *Runtime) Has(ctx context.Context, model string) (bool, error) {
	_, ok := r.Models[model]
	return ok, nil
}

// Load implements vram.Runtime.
func (r *Runtime) Load(ctx context.Context, model string) error {
	size, ok := r.Models[model]
	if !ok {
		return fmt.Errorf("%w %q", ErrUnknownModel, model)
	}
	if r.OnLoad != nil {
		if err := r.OnLoad(ctx, model); err != nil {
			return err
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	if slices.Contains(r.resident, model) {
		r.mu.Unlock()
		return nil
	}
	if len(r.resident) > 0 && !r.AllowMany {
		v := fmt.Sprintf("load %q while %v resident", model, r.resident)
		r.violations = append(r.violations, v)
		r.mu.Unlock()
		return errors.New("vramtest: " + v)
	}
	r.resident = append(r.resident, model)
	r.loads++
	r.mu.Unlock()
	if r.GPU != nil {
		r.GPU.add(int64(size))
	}
	if r.Procs != nil {
		tmpl := Proc{}
		if r.Runner != nil {
			tmpl = r.Runner(model)
		}
		user := tmpl.OnExit
		tmpl.OnExit = func() {
			r.evict(model)
			if user != nil {
				user()
			}
		}
		pid := r.Procs.Spawn(tmpl)
		r.mu.Lock()
		r.pids[model] = pid
		r.mu.Unlock()
	}
	return nil
}

// Evict drops model as if its runner died (or an operator freed it).
func (r *Runtime) Evict(model string) { r.evict(model) }

// evict drops model as if its runner died.
func (r *Runtime) evict(model string) {
	r.mu.Lock()
	i := slices.Index(r.resident, model)
	if i >= 0 {
		r.resident = slices.Delete(r.resident, i, i+1)
		delete(r.pids, model)
	}
	r.mu.Unlock()
	if i >= 0 && r.GPU != nil {
		r.GPU.add(-int64(r.Models[model]))
	}
}

// Unload implements vram.Runtime. Without Procs the model is dropped at once;
// with Procs its runner is asked to exit (and exits at once).
func (r *Runtime) Unload(ctx context.Context, model string) error {
	if r.OnUnload != nil {
		if err := r.OnUnload(ctx, model); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.unloads++
	pid, hasPID := r.pids[model]
	r.mu.Unlock()
	if hasPID && r.Procs != nil {
		r.Procs.exit(pid) // its OnExit evicts the model
	}
	r.evict(model)
	return nil
}

// Resident implements vram.Runtime.
func (r *Runtime) Resident(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.resident), nil
}

// RunnerPID implements vram.RunnerLocator.
func (r *Runtime) RunnerPID(ctx context.Context, model string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pid, ok := r.pids[model]; ok {
		return pid, nil
	}
	return 0, fmt.Errorf("vramtest: no runner for %q", model)
}

// Loads returns how many loads succeeded.
func (r *Runtime) Loads() int { r.mu.Lock(); defer r.mu.Unlock(); return r.loads }

// Unloads returns how many unloads succeeded.
func (r *Runtime) Unloads() int { r.mu.Lock(); defer r.mu.Unlock(); return r.unloads }

// Violations returns every load made while another model was resident.
func (r *Runtime) Violations() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.violations)
}

// IsResident reports whether model is resident.
func (r *Runtime) IsResident(model string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.resident, model)
}
