package reaper

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc"
)

// Idle-reaping defaults.
const (
	// DefaultIdleTimeout is how long a watched process may go without
	// activity before it gets SIGTERM (300 s). The comparison is strictly
	// greater: a process idle for exactly 300 s is left alone.
	DefaultIdleTimeout = 300 * time.Second

	// DefaultKillGrace is how long after SIGTERM a process that is still
	// there gets SIGKILL.
	DefaultKillGrace = 10 * time.Second
)

// IdleConfig configures an Idle reaper. A zero field means the default.
type IdleConfig struct {
	// Timeout is the inactivity after which a process gets SIGTERM
	// (strictly more than Timeout); 0 means DefaultIdleTimeout.
	Timeout time.Duration

	// KillGrace is the time between SIGTERM and SIGKILL; 0 means
	// DefaultKillGrace.
	KillGrace time.Duration

	// Logger receives one record per signal sent (nil discards).
	Logger *slog.Logger

	// OnEvent, if set, is called (without locks held, from the Run
	// goroutine) for every signal sent and every process found gone.
	OnEvent func(IdleEvent)
}

// IdleAction is what the idle reaper did to a process.
type IdleAction string

// Idle actions.
const (
	IdleTerm IdleAction = "sigterm" // idle for more than Timeout: SIGTERM sent
	IdleKill IdleAction = "sigkill" // still there KillGrace after SIGTERM: SIGKILL sent, then forgotten
	IdleGone IdleAction = "gone"    // exited (or its PID now names another process): forgotten, not signalled
)

// IdleEvent reports one action of the idle reaper.
type IdleEvent struct {
	PID    int
	Name   string
	Action IdleAction
	Idle   time.Duration // time since the last activity when the action was taken
	Err    error         // the signal's error, if it failed
}

// WatchOptions describe a process given to Idle.Watch.
type WatchOptions struct {
	// Name is a label for logs and events (for example "chromium").
	Name string
	// Group sends the signals to the process group whose ID is the PID (use it
	// for a process started with Setpgid, so its helpers die with it).
	Group bool
}

// Watched is a snapshot of one watched process.
type Watched struct {
	PID          int
	Name         string
	Registered   time.Time
	LastActivity time.Time
	Terminating  bool // SIGTERM already sent
}

// Idle terminates watched processes that show no activity: SIGTERM after
// more than Timeout without a Touch, SIGKILL KillGrace later. Before every
// signal it re-reads the process's start time, so a PID that was reused by
// another process is never signalled.
type Idle struct {
	cfg   IdleConfig
	procs Processes
	log   *slog.Logger

	mu      sync.Mutex
	watched map[int]*watchedProc
	wake    chan struct{}
}

type watchedProc struct {
	pid        int
	opts       WatchOptions
	start      uint64
	registered time.Time
	last       time.Time
	termAt     time.Time // zero until SIGTERM
}

// NewIdle returns an idle reaper using procs (nil means proc.OS()).
// Call Run to start it.
func NewIdle(cfg IdleConfig, procs Processes) (*Idle, error) {
	const op = "reaper.NewIdle"
	if cfg.Timeout < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "IdleConfig.Timeout is %v: use a positive duration (0 means %v)", cfg.Timeout, DefaultIdleTimeout)
	}
	if cfg.KillGrace < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "IdleConfig.KillGrace is %v: use a positive duration (0 means %v)", cfg.KillGrace, DefaultKillGrace)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultIdleTimeout
	}
	if cfg.KillGrace == 0 {
		cfg.KillGrace = DefaultKillGrace
	}
	if procs == nil {
		procs = proc.OS()
	}
	return &Idle{
		cfg:     cfg,
		procs:   procs,
		log:     loggerOrDiscard(cfg.Logger),
		watched: make(map[int]*watchedProc),
		wake:    make(chan struct{}, 1),
	}, nil
}

// Watch starts watching pid; its activity clock starts now. The process
// must exist and not be a zombie (kill(pid, 0) would pass for a zombie, so
// /proc is read instead).
// Watching an already watched PID resets its entry.
func (i *Idle) Watch(pid int, opts WatchOptions) error {
	const op = "reaper.Idle.Watch"
	if pid <= 1 {
		return talos.Errorf(talos.CodeConfigInvalid, op, "pid %d cannot be watched: use the PID of a process (greater than 1)", pid)
	}
	st, err := i.procs.Stat(pid)
	if err != nil {
		return talos.E(talos.CodeProcessKillFailed, op, "process "+itoa(pid)+" cannot be watched: it does not exist or /proc cannot be read", err)
	}
	if st.Zombie() {
		return talos.Errorf(talos.CodeProcessKillFailed, op, "process %d (%s) has already exited (zombie): nothing to watch", pid, st.Comm)
	}
	if opts.Name == "" {
		opts.Name = st.Comm
	}
	now := time.Now()
	i.mu.Lock()
	i.watched[pid] = &watchedProc{pid: pid, opts: opts, start: st.StartTime, registered: now, last: now}
	i.mu.Unlock()
	i.poke()
	return nil
}

// Touch records activity of pid now. It returns false if pid is not watched
// or is already being terminated (activity does not undo a SIGTERM).
func (i *Idle) Touch(pid int) bool {
	i.mu.Lock()
	defer i.mu.Unlock()
	w, ok := i.watched[pid]
	if !ok || !w.termAt.IsZero() {
		return false
	}
	w.last = time.Now()
	return true
}

// Forget stops watching pid (the reaper calls it when pid exits). It
// reports whether pid was watched.
func (i *Idle) Forget(pid int) bool {
	i.mu.Lock()
	_, ok := i.watched[pid]
	delete(i.watched, pid)
	i.mu.Unlock()
	if ok {
		i.poke()
	}
	return ok
}

// Watched returns the watched processes, ordered by PID.
func (i *Idle) Watched() []Watched {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]Watched, 0, len(i.watched))
	for _, w := range i.watched {
		out = append(out, Watched{PID: w.pid, Name: w.opts.Name, Registered: w.registered, LastActivity: w.last, Terminating: !w.termAt.IsZero()})
	}
	sort.Slice(out, func(a, b int) bool { return out[a].PID < out[b].PID })
	return out
}

func (i *Idle) poke() {
	select {
	case i.wake <- struct{}{}:
	default:
	}
}

// Run enforces the idle policy until ctx is done; it returns ctx.Err(). It
// sleeps until the next deadline (no polling), so it costs nothing while
// nothing is due.
func (i *Idle) Run(ctx context.Context) error {
	for {
		next, events := i.step(time.Now())
		for _, ev := range events {
			if i.cfg.OnEvent != nil {
				i.cfg.OnEvent(ev)
			}
		}
		var timer *time.Timer
		var fire <-chan time.Time
		if !next.IsZero() {
			timer = time.NewTimer(time.Until(next))
			fire = timer.C
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return ctx.Err()
		case <-i.wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// step takes every action due at now and returns the next deadline (zero if
// none) and the events to report.
func (i *Idle) step(now time.Time) (time.Time, []IdleEvent) {
	i.mu.Lock()
	defer i.mu.Unlock()
	var next time.Time
	var events []IdleEvent
	later := func(t time.Time) {
		if next.IsZero() || t.Before(next) {
			next = t
		}
	}
	for pid, w := range i.watched {
		idle := now.Sub(w.last)
		var sig syscall.Signal
		switch {
		case w.termAt.IsZero() && idle > i.cfg.Timeout:
			sig = syscall.SIGTERM
		case w.termAt.IsZero():
			// Strictly greater: the first instant that qualifies.
			later(w.last.Add(i.cfg.Timeout + time.Nanosecond))
			continue
		case now.Sub(w.termAt) >= i.cfg.KillGrace:
			sig = syscall.SIGKILL
		default:
			later(w.termAt.Add(i.cfg.KillGrace))
			continue
		}
		// Same process as the one registered, and not already exited?
		st, err := i.procs.Stat(pid)
		if err != nil || st.StartTime != w.start || st.Zombie() {
			delete(i.watched, pid)
			events = append(events, IdleEvent{PID: pid, Name: w.opts.Name, Action: IdleGone, Idle: idle})
			continue
		}
		if w.opts.Group {
			err = i.procs.SignalGroup(pid, sig)
		} else {
			err = i.procs.Signal(pid, sig)
		}
		if errors.Is(err, syscall.ESRCH) {
			delete(i.watched, pid)
			events = append(events, IdleEvent{PID: pid, Name: w.opts.Name, Action: IdleGone, Idle: idle})
			continue
		}
		ev := IdleEvent{PID: pid, Name: w.opts.Name, Idle: idle, Err: err}
		if sig == syscall.SIGTERM {
			ev.Action = IdleTerm
			w.termAt = now
			later(now.Add(i.cfg.KillGrace))
			i.log.Info("reaper: idle process terminated", "pid", pid, "name", w.opts.Name, "idle", idle.String(), "err", err)
		} else {
			ev.Action = IdleKill
			// Clean up regardless; a child is reaped by the
			// Reaper, anything else is no longer ours to track.
			delete(i.watched, pid)
			i.log.Warn("reaper: idle process killed after grace", "pid", pid, "name", w.opts.Name, "grace", i.cfg.KillGrace.String(), "err", err)
		}
		events = append(events, ev)
	}
	return next, events
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
