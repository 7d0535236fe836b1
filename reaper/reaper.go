package reaper

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/talos-ironclad/talos"
)

// Reaper defaults.
const (
	// DefaultUnknownStatusTTL is how long the exit status of a PID nobody
	// registered is kept for a late WaitPID (an orphan re-parented to us, or
	// a child started outside Command), whose starter asks for it; a
	// minute covers any realistic registration delay.
	DefaultUnknownStatusTTL = time.Minute

	// DefaultMaxUnknownStatuses bounds how many such statuses are kept; the
	// oldest is dropped first. It bounds memory when many orphans die.
	DefaultMaxUnknownStatuses = 1024
)

// ownerActive makes sure only one Reaper per process calls wait4(-1): two
// owners would steal each other's children, which is the bug the Reaper
// exists to prevent. It is the only package-level state and it mirrors a
// process-wide fact (who reaps this process's children).
var ownerActive atomic.Bool

// Config configures a Reaper. A zero field means the default.
type Config struct {
	// Subreaper makes this process a child subreaper
	// (prctl PR_SET_CHILD_SUBREAPER): orphaned descendants are re-parented
	// to it instead of PID 1, and it reaps them. Not needed when the process
	// is PID 1.
	Subreaper bool

	// UnknownStatusTTL is how long the status of an unregistered PID is kept;
	// 0 means DefaultUnknownStatusTTL.
	UnknownStatusTTL time.Duration

	// MaxUnknownStatuses bounds the statuses kept; 0 means
	// DefaultMaxUnknownStatuses.
	MaxUnknownStatuses int

	// Idle configures idle reaping of processes given to Watch (or started
	// by a Command with WatchIdle).
	Idle IdleConfig

	// Logger receives operational records (nil discards).
	Logger *slog.Logger
}

// Exit is the end of one child: its PID and wait status.
type Exit struct {
	PID    int
	Status syscall.WaitStatus
	Time   time.Time // when it was reaped
}

// Code is the exit code a shell would report: the exit status, or 128 plus
// the signal number if a signal killed the process (as tini does).
func (e Exit) Code() int {
	switch {
	case e.Status.Exited():
		return e.Status.ExitStatus()
	case e.Status.Signaled():
		return 128 + int(e.Status.Signal())
	}
	return 128
}

// String describes the exit the way exec.ExitError does.
func (e Exit) String() string {
	switch {
	case e.Status.Exited():
		return "exit status " + strconv.Itoa(e.Status.ExitStatus())
	case e.Status.Signaled():
		s := "signal: " + e.Status.Signal().String()
		if e.Status.CoreDump() {
			s += " (core dumped)"
		}
		return s
	}
	return "wait status " + strconv.Itoa(int(e.Status))
}

// Stats counts what the reaper did.
type Stats struct {
	Reaped    uint64 // every status collected by wait4
	Delivered uint64 // statuses handed to the Command that started the child
	Unknown   uint64 // statuses of PIDs nobody registered (orphans, foreign children)
	Running   int    // registered children not yet exited
}

// Reaper is the only caller of wait4 in the process: it reaps every child
// (on SIGCHLD, wait4(-1, WNOHANG) until none is left) and hands each status
// to the Command that started the child. Commands therefore never get
// ECHILD, and orphans re-parented to the process (PID 1 or a subreaper) never
// stay zombies. Only one Reaper may run per process at a time.
//
// While a Reaper runs, every child of the process must be started through
// it (Command, CommandContext, Wrap): a plain exec.Cmd.Wait would lose its
// child's status to the Reaper and fail with ECHILD.
type Reaper struct {
	cfg  Config
	log  *slog.Logger
	idle *Idle

	mu       sync.Mutex // held by Command.Start across fork so delivery waits for registration
	closed   bool
	running  map[int]*Command
	unknown  map[int]Exit
	order    []unknownRef // unknown statuses, oldest first
	waitPID  map[int][]chan Exit
	stats    Stats
	sigc     chan os.Signal
	stop     chan struct{}
	done     chan struct{}
	idleStop context.CancelFunc
	idleDone chan struct{}
}

// New starts a Reaper: it becomes the process's wait4 owner until Close.
// procs signals and inspects the processes given to Watch for idle reaping;
// nil means proc.OS().
func New(cfg Config, procs Processes) (*Reaper, error) {
	const op = "reaper.New"
	if cfg.UnknownStatusTTL < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Config.UnknownStatusTTL is %v: use a positive duration (0 means %v)", cfg.UnknownStatusTTL, DefaultUnknownStatusTTL)
	}
	if cfg.MaxUnknownStatuses < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "Config.MaxUnknownStatuses is %d: use a positive number (0 means %d)", cfg.MaxUnknownStatuses, DefaultMaxUnknownStatuses)
	}
	if cfg.UnknownStatusTTL == 0 {
		cfg.UnknownStatusTTL = DefaultUnknownStatusTTL
	}
	if cfg.MaxUnknownStatuses == 0 {
		cfg.MaxUnknownStatuses = DefaultMaxUnknownStatuses
	}
	if cfg.Idle.Logger == nil {
		cfg.Idle.Logger = cfg.Logger
	}
	idle, err := NewIdle(cfg.Idle, procs)
	if err != nil {
		return nil, err
	}
	if !ownerActive.CompareAndSwap(false, true) {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "another Reaper is already running in this process: share it (one wait4 owner per process) or Close it first")
	}
	if cfg.Subreaper {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
			ownerActive.Store(false)
			return nil, talos.E(talos.CodeProcessKillFailed, op, "prctl(PR_SET_CHILD_SUBREAPER) failed: run on Linux 3.4 or newer, or as PID 1", err)
		}
	}
	r := &Reaper{
		cfg:      cfg,
		log:      loggerOrDiscard(cfg.Logger),
		idle:     idle,
		running:  make(map[int]*Command),
		unknown:  make(map[int]Exit),
		waitPID:  make(map[int][]chan Exit),
		sigc:     make(chan os.Signal, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
		idleDone: make(chan struct{}),
	}
	signal.Notify(r.sigc, syscall.SIGCHLD)
	ctx, cancel := context.WithCancel(context.Background())
	r.idleStop = cancel
	go func() { defer close(r.idleDone); _ = idle.Run(ctx) }()
	go r.loop()
	return r, nil
}

// Close stops reaping (after one last sweep) and releases the process-wide
// ownership. Close does not kill Commands still running: their Wait falls
// back to exec.Cmd.Wait, which is safe once nobody calls wait4(-1). A
// subreaper stays a subreaper (the flag cannot be handed back safely while
// orphans may exist).
func (r *Reaper) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.stop)
	<-r.done
	r.mu.Lock()
	for pid, c := range r.running {
		close(c.handback)
		delete(r.running, pid)
	}
	r.mu.Unlock()
	signal.Stop(r.sigc)
	r.idleStop()
	<-r.idleDone
	ownerActive.Store(false)
	return nil
}

func (r *Reaper) loop() {
	defer close(r.done)
	r.reapAll() // children that exited before Notify was installed
	for {
		select {
		case <-r.stop:
			r.reapAll()
			return
		case <-r.sigc:
			r.reapAll()
		}
	}
}

// reapAll collects every exited child.
func (r *Reaper) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return // ECHILD: no children; 0: none exited yet
		}
		r.deliver(Exit{PID: pid, Status: ws, Time: time.Now()})
	}
}

func (r *Reaper) deliver(e Exit) {
	r.idle.Forget(e.PID)
	r.mu.Lock()
	r.stats.Reaped++
	c, ok := r.running[e.PID]
	if ok {
		delete(r.running, e.PID)
		r.stats.Delivered++
	} else {
		r.stats.Unknown++
		r.keepUnknown(e)
	}
	waiters := r.waitPID[e.PID]
	delete(r.waitPID, e.PID)
	r.mu.Unlock()
	for _, w := range waiters {
		w <- e // buffered 1
	}
	if ok {
		c.finish(e)
		return
	}
	r.log.Debug("reaper: reaped a process nobody registered", "pid", e.PID, "status", e.String())
}

// keepUnknown stores e for a late WaitPID; r.mu is held.
func (r *Reaper) keepUnknown(e Exit) {
	// Drop expired and excess entries, oldest first. An order entry whose
	// status was already taken (or replaced by a newer one) is skipped.
	for len(r.order) > 0 {
		front := r.order[0]
		cur, ok := r.unknown[front.pid]
		live := ok && cur.Time.Equal(front.at)
		if live && e.Time.Sub(front.at) <= r.cfg.UnknownStatusTTL && len(r.unknown) < r.cfg.MaxUnknownStatuses {
			break
		}
		r.order = r.order[1:]
		if live {
			delete(r.unknown, front.pid)
		}
	}
	r.order = append(r.order, unknownRef{pid: e.PID, at: e.Time})
	r.unknown[e.PID] = e
}

// WaitPID waits for the exit of pid, a child of this process that was not
// started through a Command (for example an orphan re-parented to a
// subreaper, or a child a library started). If pid already exited less than
// UnknownStatusTTL ago, its kept status is returned at once (and forgotten).
// Do not use it for a PID a Command owns: the Command gets that status.
func (r *Reaper) WaitPID(ctx context.Context, pid int) (Exit, error) {
	r.mu.Lock()
	if e, ok := r.unknown[pid]; ok && time.Since(e.Time) <= r.cfg.UnknownStatusTTL {
		delete(r.unknown, pid)
		r.mu.Unlock()
		return e, nil
	}
	if r.closed {
		r.mu.Unlock()
		return Exit{}, talos.Errorf(talos.CodeConfigInvalid, "reaper.WaitPID", "the reaper is closed: no status for pid %d will arrive", pid)
	}
	ch := make(chan Exit, 1)
	r.waitPID[pid] = append(r.waitPID[pid], ch)
	r.mu.Unlock()
	select {
	case e := <-ch:
		r.mu.Lock()
		delete(r.unknown, pid) // handed over; the status was kept in case we came late
		r.mu.Unlock()
		return e, nil
	case <-ctx.Done():
		r.mu.Lock()
		list := r.waitPID[pid]
		for i, w := range list {
			if w == ch {
				r.waitPID[pid] = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(r.waitPID[pid]) == 0 {
			delete(r.waitPID, pid)
		}
		r.mu.Unlock()
		return Exit{}, ctx.Err()
	}
}

// Stats returns the counters.
func (r *Reaper) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Running = len(r.running)
	return s
}

// Watch puts pid under idle reaping (see Idle.Watch).
func (r *Reaper) Watch(pid int, opts WatchOptions) error { return r.idle.Watch(pid, opts) }

// Touch records activity of a watched pid (see Idle.Touch).
func (r *Reaper) Touch(pid int) bool { return r.idle.Touch(pid) }

// Forget stops idle-watching pid.
func (r *Reaper) Forget(pid int) bool { return r.idle.Forget(pid) }

// Registered returns the processes Talos registered with this reaper:
// running Commands and idle-watched PIDs (the zombie hunt acts only on
// these).
func (r *Reaper) Registered() []Registered {
	watched := r.idle.Watched()
	byPID := make(map[int]Registered, len(watched))
	for _, w := range watched {
		byPID[w.PID] = Registered{PID: w.PID, Name: w.Name, Started: w.Registered, LastActivity: w.LastActivity}
	}
	r.mu.Lock()
	for pid, c := range r.running {
		if _, ok := byPID[pid]; !ok {
			byPID[pid] = Registered{PID: pid, Name: c.name(), Started: c.started, LastActivity: c.started}
		}
	}
	r.mu.Unlock()
	out := make([]Registered, 0, len(byPID))
	for _, v := range byPID {
		out = append(out, v)
	}
	sortRegistered(out)
	return out
}

type unknownRef struct {
	pid int
	at  time.Time
}

func itoa(i int) string { return strconv.Itoa(i) }
