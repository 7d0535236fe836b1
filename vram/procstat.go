package vram

import (
	"fmt"
	"strconv"
	"strings"
)

// ProcState is what the kill ladder needs to know about a process.
type ProcState int

// Process states.
const (
	// ProcGone: no such process (or its PID now belongs to another process).
	ProcGone ProcState = iota
	// ProcRunning: alive (running, sleeping, stopped, in uninterruptible I/O).
	ProcRunning
	// ProcZombie: exited but not yet reaped by its parent. A zombie holds no
	// memory, GPU memory included.
	ProcZombie
)

// String returns "gone", "running" or "zombie".
func (s ProcState) String() string {
	switch s {
	case ProcGone:
		return "gone"
	case ProcRunning:
		return "running"
	case ProcZombie:
		return "zombie"
	}
	return "invalid"
}

// ProcInfo is the parsed part of /proc/<pid>/stat the ladder uses.
type ProcInfo struct {
	PID       int
	Comm      string
	State     byte   // the one-letter state: R, S, D, Z, T, t, X, I, ...
	PPID      int    // parent PID
	StartTime uint64 // clock ticks after boot; detects PID reuse
}

// ProcState maps the one-letter state onto ProcState (Z → zombie,
// X/x → gone, anything else → running).
func (p ProcInfo) ProcState() ProcState {
	switch p.State {
	case 'Z':
		return ProcZombie
	case 'X', 'x':
		return ProcGone
	}
	return ProcRunning
}

// ParseProcStat parses the contents of /proc/<pid>/stat. The command name is
// in parentheses and may itself contain spaces and parentheses, so the fields
// are split after the last ')'.
func ParseProcStat(data string) (ProcInfo, error) {
	var p ProcInfo
	open := strings.IndexByte(data, '(')
	closing := strings.LastIndexByte(data, ')')
	if open <= 0 || closing < open {
		return p, fmt.Errorf("proc stat: no \"(comm)\" field in %q", truncate(data, 64))
	}
	pid, err := strconv.Atoi(strings.TrimSpace(data[:open]))
	if err != nil || pid <= 0 {
		return p, fmt.Errorf("proc stat: pid %q is not a positive integer", truncate(data[:open], 32))
	}
	p.PID = pid
	p.Comm = data[open+1 : closing]
	fields := strings.Fields(data[closing+1:])
	// fields[0] is field 3 (state), fields[1] field 4 (ppid), fields[19]
	// field 22 (starttime), per proc(5).
	if len(fields) < 20 {
		return p, fmt.Errorf("proc stat: %d fields after the command name, want at least 20", len(fields))
	}
	if len(fields[0]) != 1 {
		return p, fmt.Errorf("proc stat: state %q is not one letter", truncate(fields[0], 16))
	}
	p.State = fields[0][0]
	if p.PPID, err = strconv.Atoi(fields[1]); err != nil || p.PPID < 0 {
		return p, fmt.Errorf("proc stat: ppid %q is not a non-negative integer", truncate(fields[1], 32))
	}
	if p.StartTime, err = strconv.ParseUint(fields[19], 10, 64); err != nil {
		return p, fmt.Errorf("proc stat: starttime %q is not an unsigned integer", truncate(fields[19], 32))
	}
	return p, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
