//go:build linux

package daemon

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// isSubreaper reports whether this process is a child subreaper
// (PR_SET_CHILD_SUBREAPER), which the init step accepts in place of PID 1.
func isSubreaper() bool {
	var v int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0); err != nil {
		return false
	}
	return v != 0
}

// nofile returns the soft and hard RLIMIT_NOFILE. Go raises the soft limit
// to the hard one at start-up, which is what the original init step's
// `ulimit -n 65536` wanted.
func nofile() (soft, hard uint64, err error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	return r.Cur, r.Max, nil
}
