package proc

import "syscall"

// Processes signals, inspects and reaps processes. OS returns the real one;
// every implementation passes proctest.Run.
type Processes interface {
	// Signal sends sig to pid. It refuses pid <= 0 (a group or every
	// process) with syscall.ESRCH, and a process that does not exist gives
	// an error satisfying errors.Is(err, syscall.ESRCH). Signal 0 checks
	// that pid exists.
	Signal(pid int, sig syscall.Signal) error
	// SignalGroup sends sig to every process of group pgid. It refuses
	// pgid <= 1 with syscall.ESRCH.
	SignalGroup(pgid int, sig syscall.Signal) error
	// Stat returns the process's state, or an error wrapping ErrGone when
	// it does not exist (pid <= 0 included).
	Stat(pid int) (Stat, error)
	// Reap collects the exit status of pid when it is an exited child of
	// this process, without blocking. It reports false and a nil error when
	// pid is not a child of this process (or not one that has exited).
	Reap(pid int) (bool, error)
}

// OS returns the Processes of this machine: kill(2), /proc/<pid>/stat and
// wait4(2) with WNOHANG.
func OS() Processes { return osProcesses{} }

type osProcesses struct{}
