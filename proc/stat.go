package proc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ErrGone is returned (wrapped or as is) by Processes.Stat for a process
// that does not exist, or no longer does.
var ErrGone = errors.New("proc: process does not exist")

// Stat is the part of /proc/<pid>/stat (proc(5)) a supervisor uses.
type Stat struct {
	PID int
	// Comm is the executable name without the parentheses; it may hold
	// spaces and ')' (a process can name itself anything).
	Comm string
	// State is the one-letter state: R, S, D, Z, T, t, X, I, ...
	State byte
	// PPID is the parent's PID.
	PPID int
	// PGRP is the process group.
	PGRP int
	// StartTime is the start in clock ticks after boot; with the PID it
	// identifies one process across PID reuse.
	StartTime uint64
}

// Zombie reports whether the process has exited and waits to be reaped. A
// zombie holds no memory, GPU memory included.
func (s Stat) Zombie() bool { return s.State == 'Z' }

// Dead reports whether the process is dead but still listed (state X or x):
// for a supervisor it is gone.
func (s Stat) Dead() bool { return s.State == 'X' || s.State == 'x' }

// ParseStat parses the contents of /proc/<pid>/stat. The command name may
// contain spaces and ')', so the fields after it are found from the last
// ')', never with a regular expression that a crafted name could fool.
func ParseStat(line string) (Stat, error) {
	line = strings.TrimRight(line, "\n")
	open := strings.IndexByte(line, '(')
	closing := strings.LastIndexByte(line, ')')
	if open <= 0 || closing < open {
		return Stat{}, fmt.Errorf("proc: stat %q: want \"pid (comm) state ...\"", clip(line, 64))
	}
	var st Stat
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil || pid <= 0 {
		return Stat{}, fmt.Errorf("proc: stat %q: pid %q is not a positive number", clip(line, 64), clip(line[:open], 16))
	}
	st.PID = pid
	st.Comm = line[open+1 : closing]
	rest := strings.Fields(line[closing+1:])
	// rest[0] is field 3 (state); field n of proc(5) is rest[n-3].
	const startTimeIdx = 22 - 3
	if len(rest) <= startTimeIdx {
		return Stat{}, fmt.Errorf("proc: stat of pid %d has %d fields after comm, want at least %d", pid, len(rest), startTimeIdx+1)
	}
	if len(rest[0]) != 1 || !isLetter(rest[0][0]) {
		return Stat{}, fmt.Errorf("proc: stat of pid %d: state %q is not one letter", pid, clip(rest[0], 16))
	}
	st.State = rest[0][0]
	if st.PPID, err = strconv.Atoi(rest[1]); err != nil || st.PPID < 0 {
		return Stat{}, fmt.Errorf("proc: stat of pid %d: ppid %q is not a non-negative number", pid, clip(rest[1], 16))
	}
	if st.PGRP, err = strconv.Atoi(rest[2]); err != nil || st.PGRP < 0 {
		return Stat{}, fmt.Errorf("proc: stat of pid %d: pgrp %q is not a non-negative number", pid, clip(rest[2], 16))
	}
	if st.StartTime, err = strconv.ParseUint(rest[startTimeIdx], 10, 64); err != nil {
		return Stat{}, fmt.Errorf("proc: stat of pid %d: starttime %q is not an unsigned number", pid, clip(rest[startTimeIdx], 24))
	}
	return st, nil
}

// clip shortens s to n bytes for an error message; %q escapes the rest.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// ParseCmdline splits the contents of /proc/<pid>/cmdline (arguments
// separated and terminated by NUL bytes) into argv.
func ParseCmdline(data []byte) []string {
	s := strings.TrimRight(string(data), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}
