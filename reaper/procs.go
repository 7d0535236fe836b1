package reaper

import (
	"syscall"

	"github.com/talos-ironclad/talos/proc"
)

// Processes is what the idle reaper and the zombie hunt need from the
// operating system: proc.OS() is the real one, and any proc.Processes
// satisfies it; tests pass a fake such as proctest.Procs.
type Processes interface {
	// Signal sends sig to pid (pid > 0 only: never a group or every process).
	Signal(pid int, sig syscall.Signal) error
	// SignalGroup sends sig to the process group pgid (pgid > 1).
	SignalGroup(pgid int, sig syscall.Signal) error
	// Stat returns the process's /proc stat, or an error wrapping
	// proc.ErrGone.
	Stat(pid int) (proc.Stat, error)
}

// Ancestors returns the PIDs of pid's parent, grandparent, … up to (and
// including) PID 1, read from the ppid chain in /proc. It stops at the first
// process it cannot read.
func Ancestors(p Processes, pid int) []int {
	var out []int
	seen := map[int]bool{pid: true}
	for {
		st, err := p.Stat(pid)
		if err != nil || st.PPID <= 0 || seen[st.PPID] {
			return out
		}
		out = append(out, st.PPID)
		seen[st.PPID] = true
		pid = st.PPID
	}
}
