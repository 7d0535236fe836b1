package vram

import (
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc"
)

// KillMethod says how the kill ladder ended.
type KillMethod string

// Kill methods.
const (
	KillSIGTERM           KillMethod = "SIGTERM"            // exited within the grace period
	KillSIGKILL           KillMethod = "SIGKILL"            // needed SIGKILL
	KillAlreadyTerminated KillMethod = "ALREADY_TERMINATED" // gone before SIGTERM
	KillFailed            KillMethod = "FAILED"             // still alive: GPU_UNRECOVERABLE
)

// Issue is one finding of the post-kill diagnostics.
type Issue struct {
	Check    string `json:"check"`
	Critical bool   `json:"critical"`
	Detail   string `json:"detail"`
}

// KillReport records one run of the kill ladder and the recovery after it.
type KillReport struct {
	PID            int           `json:"pid"`
	Model          string        `json:"model"`
	Started        time.Time     `json:"started"`
	Duration       time.Duration `json:"duration"`
	Method         KillMethod    `json:"method"`
	Signals        []string      `json:"signals"` // signals actually sent, in order
	ZombieDetected bool          `json:"zombie_detected"`
	Reaped         bool          `json:"reaped"`   // we collected the zombie (it was our child)
	Verified       bool          `json:"verified"` // the process is confirmed gone
	CooldownUntil  time.Time     `json:"cooldown_until,omitzero"`
	Diagnostics    []Issue       `json:"diagnostics,omitempty"`
	Error          string        `json:"error,omitempty"`
}

// inspect reads pid's state; gone reports (with a nil error) a process
// that does not exist or is dead.
func inspect(p Processes, pid int) (st proc.Stat, gone bool, err error) {
	st, err = p.Stat(pid)
	if errors.Is(err, proc.ErrGone) {
		return proc.Stat{PID: pid}, true, nil
	}
	if err != nil {
		return proc.Stat{PID: pid}, false, err
	}
	return st, st.Dead(), nil
}

// ladder is the kill procedure: SIGTERM, grace, SIGKILL, verify.
type ladder struct {
	procs  Processes
	grace  time.Duration
	verify time.Duration
	poll   time.Duration
	log    *slog.Logger
	self   int // our PID: zombies whose parent we are must be reaped by us
}

// kill terminates pid and reports how. It never blocks longer than
// grace + verify (+ one poll interval). A non-nil error (code T106) means the
// process is still alive.
func (l ladder) kill(pid int, model string) (KillReport, error) {
	const op = "vram.kill"
	rep := KillReport{PID: pid, Model: model, Started: time.Now()}
	defer func() { rep.Duration = time.Since(rep.Started) }()
	l.log.Warn("KILL_PROCEDURE_START", "pid", pid, "model", model)

	first, firstGone, err := inspect(l.procs, pid)
	if err != nil {
		l.log.Warn("kill: cannot inspect process", "pid", pid, "err", err)
	}
	startTime := first.StartTime
	// gone reports whether pid is no longer a live process, reaping it if it
	// is our zombie child.
	gone := func() bool {
		info, isGone, err := inspect(l.procs, pid)
		if err != nil {
			l.log.Warn("kill: cannot inspect process", "pid", pid, "err", err)
			return false
		}
		if isGone || (startTime != 0 && info.StartTime != 0 && info.StartTime != startTime) {
			return true
		}
		if info.Zombie() {
			if !rep.ZombieDetected {
				l.log.Warn("KILL_ZOMBIE_DETECTED", "pid", pid, "ppid", info.PPID)
			}
			rep.ZombieDetected = true
			reaped, err := l.procs.Reap(pid)
			if err != nil {
				l.log.Warn("kill: reaping the zombie failed", "pid", pid, "err", err)
			}
			if reaped {
				rep.Reaped = true
			} else if info.PPID == l.self && l.self > 0 {
				// Our child, but not waitable yet: a multi-threaded
				// process shows Z while its other threads still exit.
				return false
			} else {
				// Not our child: its parent must reap it. A zombie holds no
				// memory, so it no longer blocks the GPU.
				l.log.Warn("kill: zombie is not our child; its parent must reap it", "pid", pid, "ppid", info.PPID)
			}
			return true
		}
		return false
	}
	waitGone := func(d time.Duration) bool {
		deadline := time.Now().Add(d)
		for {
			if gone() {
				return true
			}
			if !time.Now().Before(deadline) {
				return false
			}
			time.Sleep(min(l.poll, time.Until(deadline)+time.Millisecond))
		}
	}
	send := func(sig syscall.Signal, name string) (alreadyGone bool, err error) {
		err = l.procs.Signal(pid, sig)
		if errors.Is(err, syscall.ESRCH) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		rep.Signals = append(rep.Signals, name)
		return false, nil
	}
	fail := func(cause error, format string, args ...any) (KillReport, error) {
		rep.Method = KillFailed
		e := talos.E(talos.CodeProcessKillFailed, op, fmt.Sprintf(format, args...), cause)
		rep.Error = e.Error()
		l.log.Error("KILL_PROCEDURE_FAILED", "pid", pid, "model", model, "err", e)
		return rep, e
	}

	if (firstGone || first.Zombie()) && err == nil && gone() {
		rep.Method, rep.Verified = KillAlreadyTerminated, true
		return rep, nil
	}
	already, err := send(syscall.SIGTERM, "SIGTERM")
	if err != nil {
		return fail(err, "SIGTERM to runner pid %d (model %q) failed; check that the daemon runs as the runner's user", pid, model)
	}
	if already {
		gone()
		rep.Method, rep.Verified = KillAlreadyTerminated, true
		return rep, nil
	}
	if waitGone(l.grace) {
		rep.Method, rep.Verified = KillSIGTERM, true
		l.log.Warn("KILL_PROCEDURE_COMPLETE", "pid", pid, "method", rep.Method, "duration", time.Since(rep.Started))
		return rep, nil
	}
	l.log.Warn("KILL_SIGKILL", "pid", pid, "model", model, "grace", l.grace)
	already, err = send(syscall.SIGKILL, "SIGKILL")
	if err != nil {
		return fail(err, "SIGKILL to runner pid %d (model %q) failed", pid, model)
	}
	if already || waitGone(l.verify) {
		rep.Method, rep.Verified = KillSIGKILL, true
		if already {
			// It exited between the grace check and SIGKILL.
			gone()
			rep.Method = KillSIGTERM
		}
		l.log.Warn("KILL_PROCEDURE_COMPLETE", "pid", pid, "method", rep.Method, "duration", time.Since(rep.Started))
		return rep, nil
	}
	l.log.Error("KILL_PROCESS_STILL_ALIVE", "pid", pid, "after", l.verify)
	return fail(nil, "runner pid %d (model %q) is still alive %v after SIGKILL (probably stuck in the GPU driver); it holds GPU memory: stop the runtime or reboot, then call Reset", pid, model, l.verify)
}
