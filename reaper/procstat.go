package reaper

import (
	"fmt"
	"strconv"
	"strings"
)

// ProcStat is the part of /proc/<pid>/stat the reaper uses (proc(5)).
type ProcStat struct {
	PID       int
	Comm      string // the executable name, without the parentheses (may hold spaces and ')')
	State     byte   // R, S, D, Z, T, t, X, I …
	PPID      int
	PGRP      int
	StartTime uint64 // clock ticks after boot; with PID it identifies one process across PID reuse
}

// Zombie reports whether the process has exited and waits to be reaped.
func (s ProcStat) Zombie() bool { return s.State == 'Z' }

// ParseProcStat parses the contents of /proc/<pid>/stat. The comm field may
// contain spaces and ')' (a process can name itself anything), so the fields
// after it are found from the LAST ')', never with a regular expression
// that a crafted name could fool.
func ParseProcStat(line string) (ProcStat, error) {
	line = strings.TrimRight(line, "\n")
	open := strings.IndexByte(line, '(')
	closing := strings.LastIndexByte(line, ')')
	if open <= 0 || closing < open {
		return ProcStat{}, fmt.Errorf("reaper: /proc stat %q: want \"pid (comm) state …\"", truncate(line, 64))
	}
	var st ProcStat
	pid, err := strconv.Atoi(strings.TrimSpace(line[:open]))
	if err != nil || pid <= 0 {
		return ProcStat{}, fmt.Errorf("reaper: /proc stat %q: pid %q is not a positive number", truncate(line, 64), truncate(line[:open], 16))
	}
	st.PID = pid
	st.Comm = line[open+1 : closing]
	rest := strings.Fields(line[closing+1:])
	// rest[0] is field 3 (state); field n of proc(5) is rest[n-3].
	const startTimeIdx = 22 - 3
	if len(rest) <= startTimeIdx {
		return ProcStat{}, fmt.Errorf("reaper: /proc stat of pid %d has %d fields after comm, want at least %d", pid, len(rest), startTimeIdx+1)
	}
	if len(rest[0]) != 1 || !isLetter(rest[0][0]) {
		return ProcStat{}, fmt.Errorf("reaper: /proc stat of pid %d: state %q is not one letter", pid, truncate(rest[0], 16))
	}
	st.State = rest[0][0]
	if st.PPID, err = strconv.Atoi(rest[1]); err != nil || st.PPID < 0 {
		return ProcStat{}, fmt.Errorf("reaper: /proc stat of pid %d: ppid %q is not a number", pid, truncate(rest[1], 16))
	}
	if st.PGRP, err = strconv.Atoi(rest[2]); err != nil || st.PGRP < 0 {
		return ProcStat{}, fmt.Errorf("reaper: /proc stat of pid %d: pgrp %q is not a number", pid, truncate(rest[2], 16))
	}
	if st.StartTime, err = strconv.ParseUint(rest[startTimeIdx], 10, 64); err != nil {
		return ProcStat{}, fmt.Errorf("reaper: /proc stat of pid %d: starttime %q is not a number", pid, truncate(rest[startTimeIdx], 24))
	}
	return st, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func isLetter(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
