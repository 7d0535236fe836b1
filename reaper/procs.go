package reaper

import (
	"errors"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// ErrGone is returned by Processes.Stat for a process that no longer exists.
var ErrGone = errors.New("reaper: process does not exist")

// Processes is what the idle reaper and the zombie hunt need from the
// operating system. OSProcesses is the real one; tests pass a fake.
type Processes interface {
	// Signal sends sig to pid (pid > 0 only: never a group or every process).
	Signal(pid int, sig syscall.Signal) error
	// SignalGroup sends sig to the process group pgid (pgid > 1).
	SignalGroup(pgid int, sig syscall.Signal) error
	// Stat returns the process's /proc stat, or an error wrapping ErrGone.
	Stat(pid int) (ProcStat, error)
}

// OSProcesses returns the Processes of this machine: kill(2) and
// /proc/<pid>/stat.
func OSProcesses() Processes { return osProcesses{} }

type osProcesses struct{}

func (osProcesses) Signal(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return syscall.ESRCH
	}
	return syscall.Kill(pid, sig)
}

func (osProcesses) SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return syscall.ESRCH
	}
	return syscall.Kill(-pgid, sig)
}

func (osProcesses) Stat(pid int) (ProcStat, error) {
	if pid <= 0 {
		return ProcStat{}, ErrGone
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return ProcStat{}, ErrGone
	}
	if err != nil {
		return ProcStat{}, err
	}
	return ParseProcStat(string(data))
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
