//go:build linux

package vram

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"
)

// FindProcesses returns, in ascending order, the PIDs of the processes whose
// command line (from /proc/<pid>/cmdline) satisfies match. Processes that
// vanish or cannot be read during the scan are skipped.
func FindProcesses(match func(argv []string) bool) ([]int, error) {
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

// OSProcesses returns the Processes of this machine: kill(2), /proc/<pid>/stat
// and wait4(2) with WNOHANG.
func OSProcesses() Processes { return osProcesses{} }

type osProcesses struct{}

func (osProcesses) Signal(pid int, sig syscall.Signal) error {
	if pid <= 0 {
		return syscall.ESRCH // never signal a process group or every process
	}
	return syscall.Kill(pid, sig)
}

func (osProcesses) Inspect(pid int) (ProcInfo, error) {
	if pid <= 0 {
		return ProcInfo{PID: pid, State: 'X'}, nil
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
		return ProcInfo{PID: pid, State: 'X'}, nil
	}
	if err != nil {
		return ProcInfo{PID: pid}, err
	}
	return ParseProcStat(string(data))
}

func (osProcesses) Reap(pid int) (bool, error) {
	if pid <= 0 {
		return false, nil
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
