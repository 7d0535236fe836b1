package reaper

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
)

// Command runs one child under a Reaper. It wraps an exec.Cmd (configure
// Cmd's Env, Dir, Stdin/Stdout/Stderr, SysProcAttr before Start) but gets
// the exit status from the Reaper instead of wait4, so Wait never fails with
// ECHILD however many other children the Reaper reaps at the same time.
type Command struct {
	// Cmd is the wrapped command. Do not call Cmd.Start, Cmd.Wait or
	// Cmd.Run, and after Wait read the PID from PID(): Cmd.Process is
	// released once the status is known.
	Cmd *exec.Cmd

	// WatchIdle puts the process under the Reaper's idle reaping when it
	// starts (SIGTERM after IdleConfig.Timeout without Touch).
	WatchIdle bool

	r   *Reaper
	ctx context.Context

	mu       sync.Mutex // orders Signal against Release
	released bool
	started  time.Time
	pid      int
	done     chan struct{}
	exit     Exit
	handback chan struct{} // closed when the Reaper closed before the child exited

	waitOnce sync.Once
	waitErr  error
}

// ExitError is returned by Command.Wait when the child did not exit with
// status 0.
type ExitError struct {
	Exit Exit
}

// Error describes the exit ("exit status 3", "signal: killed").
func (e *ExitError) Error() string { return e.Exit.String() }

// ExitCode is the shell-style code (128+signal for a killed child).
func (e *ExitError) ExitCode() int { return e.Exit.Code() }

// Command returns a Command for name and args (exec.Command semantics).
func (r *Reaper) Command(name string, arg ...string) *Command {
	return r.Wrap(exec.Command(name, arg...))
}

// CommandContext is Command with a context: when ctx is done before the
// child exits, the child gets SIGKILL (like exec.CommandContext).
func (r *Reaper) CommandContext(ctx context.Context, name string, arg ...string) *Command {
	c := r.Wrap(exec.Command(name, arg...))
	c.ctx = ctx
	return c
}

// Wrap returns a Command for a configured exec.Cmd. The Cmd must not come
// from exec.CommandContext (its cancel would race the Reaper); use
// Reaper.CommandContext instead.
func (r *Reaper) Wrap(cmd *exec.Cmd) *Command {
	return &Command{Cmd: cmd, r: r}
}

// Start starts the child. The Reaper's delivery lock is held across the
// fork, so the child is registered before its status can be delivered, even
// if it exits at once.
func (c *Command) Start() error {
	const op = "reaper.Command.Start"
	if c.Cmd == nil || c.r == nil {
		return talos.Errorf(talos.CodeConfigInvalid, op, "Command has no Cmd or Reaper: create it with Reaper.Command, CommandContext or Wrap")
	}
	if c.done != nil || c.Cmd.Process != nil {
		return talos.Errorf(talos.CodeConfigInvalid, op, "command %q was already started: create a new Command", c.name())
	}
	if c.Cmd.Cancel != nil {
		return talos.Errorf(talos.CodeConfigInvalid, op, "command %q was made with exec.CommandContext: use Reaper.CommandContext so cancellation goes through the reaper", c.name())
	}
	if c.ctx != nil {
		if err := c.ctx.Err(); err != nil {
			return err
		}
	}
	r := c.r
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return talos.Errorf(talos.CodeConfigInvalid, op, "the reaper is closed: start %q with an open Reaper", c.name())
	}
	if err := c.Cmd.Start(); err != nil {
		r.mu.Unlock()
		return err
	}
	c.pid = c.Cmd.Process.Pid
	c.started = time.Now()
	c.done = make(chan struct{})
	c.handback = make(chan struct{})
	// Any kept status under this PID belongs to an earlier process.
	delete(r.unknown, c.pid)
	r.running[c.pid] = c
	if c.WatchIdle {
		if err := r.idle.Watch(c.pid, WatchOptions{Name: c.name(), Group: c.ownGroup()}); err != nil {
			r.log.Debug("reaper: child exited before it could be watched", "pid", c.pid, "err", err)
		}
	}
	r.mu.Unlock()
	if c.ctx != nil && c.ctx.Done() != nil {
		go func() {
			select {
			case <-c.ctx.Done():
				_ = c.Signal(os.Kill)
			case <-c.done:
			}
		}()
	}
	return nil
}

// finish records the status; called once by the Reaper.
func (c *Command) finish(e Exit) {
	c.exit = e
	close(c.done)
}

// Wait waits for the child to exit and for the Cmd's I/O copying to finish.
// It returns nil for exit status 0, an *ExitError otherwise (also when the
// context killed the child).
func (c *Command) Wait() error {
	if c.done == nil {
		return talos.Errorf(talos.CodeConfigInvalid, "reaper.Command.Wait", "command %q was not started: call Start first", c.name())
	}
	c.waitOnce.Do(func() {
		select {
		case <-c.done:
		case <-c.handback:
			// The Reaper was closed before the child exited: nobody calls
			// wait4(-1) any more, so exec.Cmd.Wait can wait for it itself.
			select {
			case <-c.done: // delivered after all
			default:
				c.waitHandedBack()
				return
			}
		}
		// The process is reaped. Release it so exec.Cmd.Wait makes no wait
		// syscall (it would get ECHILD, or with a reused PID and no pidfd,
		// another child's status), then let Cmd.Wait join the I/O goroutines
		// and close the pipes.
		c.mu.Lock()
		c.released = true
		_ = c.Cmd.Process.Release()
		c.mu.Unlock()
		ioErr := c.Cmd.Wait()
		switch {
		case !c.exit.Status.Exited() || c.exit.Status.ExitStatus() != 0:
			c.waitErr = &ExitError{Exit: c.exit}
		case ioErr != nil && !errors.Is(ioErr, syscall.EINVAL):
			c.waitErr = ioErr
		}
	})
	return c.waitErr
}

func (c *Command) waitHandedBack() {
	err := c.Cmd.Wait()
	ps := c.Cmd.ProcessState
	if ps == nil {
		c.waitErr = err
		return
	}
	ws, _ := ps.Sys().(syscall.WaitStatus)
	c.mu.Lock()
	c.released = true
	c.mu.Unlock()
	c.finish(Exit{PID: c.pid, Status: ws, Time: time.Now()})
	if !ws.Exited() || ws.ExitStatus() != 0 {
		c.waitErr = &ExitError{Exit: c.exit}
	} else if err != nil {
		c.waitErr = err
	}
}

// Run starts the child and waits for it.
func (c *Command) Run() error {
	if err := c.Start(); err != nil {
		return err
	}
	return c.Wait()
}

// PID is the child's process ID (0 before Start).
func (c *Command) PID() int { return c.pid }

// Done is closed when the child has exited (nil before Start).
func (c *Command) Done() <-chan struct{} { return c.done }

// Exit returns the child's exit, and whether it has exited.
func (c *Command) Exit() (Exit, bool) {
	if c.done == nil {
		return Exit{}, false
	}
	select {
	case <-c.done:
		return c.exit, true
	default:
		return Exit{}, false
	}
}

// Signal sends sig to the child. After the child was reaped it returns
// os.ErrProcessDone; the signal never reaches a process that re-used the PID
// (Go signals through a pidfd on Linux 5.4 and newer).
func (c *Command) Signal(sig os.Signal) error {
	if c.done == nil {
		return talos.Errorf(talos.CodeConfigInvalid, "reaper.Command.Signal", "command %q was not started", c.name())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return os.ErrProcessDone
	}
	return c.Cmd.Process.Signal(sig)
}

// SignalGroup sends sig to the child's process group. The child must have
// been started in its own group (Cmd.SysProcAttr.Setpgid); the group exists
// as long as any member does, so the ID cannot name another group meanwhile.
func (c *Command) SignalGroup(sig syscall.Signal) error {
	const op = "reaper.Command.SignalGroup"
	if c.done == nil {
		return talos.Errorf(talos.CodeConfigInvalid, op, "command %q was not started", c.name())
	}
	if !c.ownGroup() {
		return talos.Errorf(talos.CodeConfigInvalid, op, "command %q was not started in its own process group: set Cmd.SysProcAttr.Setpgid", c.name())
	}
	err := syscall.Kill(-c.pid, sig)
	if errors.Is(err, syscall.ESRCH) {
		return os.ErrProcessDone
	}
	return err
}

// Touch records activity of the child for idle reaping (see WatchIdle).
func (c *Command) Touch() bool { return c.pid > 0 && c.r.idle.Touch(c.pid) }

func (c *Command) ownGroup() bool {
	return c.Cmd.SysProcAttr != nil && c.Cmd.SysProcAttr.Setpgid && c.Cmd.SysProcAttr.Pgid == 0
}

func (c *Command) name() string {
	if c.Cmd == nil {
		return ""
	}
	if len(c.Cmd.Args) > 0 {
		return filepath.Base(c.Cmd.Args[0])
	}
	return filepath.Base(c.Cmd.Path)
}

// Registered describes a process Talos registered (see Reaper.Registered).
type Registered struct {
	PID          int
	Name         string
	Started      time.Time // when it was started or registered
	LastActivity time.Time
}

func sortRegistered(rs []Registered) {
	sort.Slice(rs, func(a, b int) bool { return rs[a].PID < rs[b].PID })
}
