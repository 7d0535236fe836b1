//go:build linux

package proc

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"
)

func (osProcesses) Signal(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return syscall.ESRCH // never a process group or every process
	}
	return syscall.Kill(pid, sig)
}

func (osProcesses) SignalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return syscall.ESRCH
	}
	return syscall.Kill(-pgid, sig)
}

func (osProcesses) Stat(pid int) (Stat, error) {
	if pid <= 0 {
		return Stat{}, ErrGone
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return Stat{}, ErrGone
	}
	if err != nil {
		return Stat{}, err
	}
	return ParseStat(string(data))
}

func (osProcesses) Reap(pid int) (bool, error) {
	if pid <= 0 {
		return false, nil // wait4(0) or wait4(-1) would reap any child
	}
	var ws syscall.WaitStatus
	for {
		got, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if errors.Is(err, syscall.ECHILD) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		return got == pid, nil
	}
}

// Find returns, in ascending order, the PIDs of the processes whose command
// line (from /proc/<pid>/cmdline) satisfies match. Processes that vanish or
// cannot be read during the scan are skipped.
func Find(match func(argv []string) bool) ([]int, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		data, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		if match(ParseCmdline(data)) {
			pids = append(pids, pid)
		}
	}
	slices.Sort(pids)
	return pids, nil
}
