package proctest

import (
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos/proc"
)

// Procs is a fake process table implementing proc.Processes, safe for
// concurrent use. A process dies on SIGKILL, and on SIGTERM unless it
// ignores it; a dead process is gone (as if reaped), unless SetZombie made it
// a zombie, which Reap then collects. Its group is itself.
type Procs struct {
	mu    sync.Mutex
	procs map[int]*fakeProc
	sent  []Sent
	ticks uint64
}

type fakeProc struct {
	st         proc.Stat
	ignoreTerm bool
}

// Sent is one signal the fake received.
type Sent struct {
	PID    int
	Signal syscall.Signal
	Group  bool
	At     time.Time
}

// NewProcs returns an empty table.
func NewProcs() *Procs { return &Procs{procs: make(map[int]*fakeProc)} }

// Add creates process pid named comm with parent ppid. ignoreTerm makes it
// survive SIGTERM. Adding an existing pid replaces it by a new process (a
// reused PID, with a new start time).
func (p *Procs) Add(pid int, comm string, ppid int, ignoreTerm bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ticks++
	p.procs[pid] = &fakeProc{st: proc.Stat{PID: pid, Comm: comm, State: 'S', PPID: ppid, PGRP: pid, StartTime: p.ticks}, ignoreTerm: ignoreTerm}
}

// SetZombie marks pid as exited but not reaped.
func (p *Procs) SetZombie(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if x, ok := p.procs[pid]; ok {
		x.st.State = 'Z'
	}
}

// Remove makes pid disappear.
func (p *Procs) Remove(pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.procs, pid)
}

// Alive reports whether pid exists.
func (p *Procs) Alive(pid int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.procs[pid]
	return ok
}

// Sent returns the signals received so far.
func (p *Procs) Sent() []Sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.sent)
}

// Signal implements proc.Processes.
func (p *Procs) Signal(pid int, sig syscall.Signal) error { return p.signal(pid, sig, false) }

// SignalGroup implements proc.Processes (the group is the process itself).
func (p *Procs) SignalGroup(pgid int, sig syscall.Signal) error { return p.signal(pgid, sig, true) }

func (p *Procs) signal(pid int, sig syscall.Signal, group bool) error {
	if pid <= 0 || (group && pid <= 1) {
		return syscall.ESRCH // never a broadcast, like the OS implementation
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	x, ok := p.procs[pid]
	if !ok || x.st.Zombie() {
		return syscall.ESRCH
	}
	p.sent = append(p.sent, Sent{PID: pid, Signal: sig, Group: group, At: time.Now()})
	if sig == syscall.SIGKILL || (sig == syscall.SIGTERM && !x.ignoreTerm) {
		delete(p.procs, pid)
	}
	return nil
}

// Stat implements proc.Processes.
func (p *Procs) Stat(pid int) (proc.Stat, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	x, ok := p.procs[pid]
	if !ok {
		return proc.Stat{}, proc.ErrGone
	}
	return x.st, nil
}

// Reap implements proc.Processes: a zombie made by SetZombie is collected
// and gone; anything else reports false.
func (p *Procs) Reap(pid int) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	x, ok := p.procs[pid]
	if !ok || !x.st.Zombie() {
		return false, nil
	}
	delete(p.procs, pid)
	return true, nil
}
