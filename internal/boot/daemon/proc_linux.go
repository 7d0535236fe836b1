//go:build linux

package daemon

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// isSubreaper reports whether this process is a child subreaper
// (PR_SET_CHILD_SUBREAPER), which spec §1.3 S1 accepts in place of PID 1.
func isSubreaper() bool {
	var v int32
	if err := unix.Prctl(unix.PR_GET_CHILD_SUBREAPER, uintptr(unsafe.Pointer(&v)), 0, 0, 0); err != nil {
		return false
	}
	return v != 0
}

// nofile returns the soft and hard RLIMIT_NOFILE. Go raises the soft limit
// to the hard one at start-up, which is what S1's `ulimit -n 65536` wanted.
func nofile() (soft, hard uint64, err error) {
	var r unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &r); err != nil {
		return 0, 0, err
	}
	return r.Cur, r.Max, nil
}

// diskUsage returns the used fraction (0–1) of the file system holding path.
func diskUsage(path string) (float64, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return 0, err
	}
	total := float64(st.Blocks) * float64(st.Bsize)
	if total == 0 {
		return 0, nil
	}
	// Like df: used / (used + available to unprivileged users).
	used := float64(st.Blocks-st.Bfree) * float64(st.Bsize)
	avail := float64(st.Bavail) * float64(st.Bsize)
	return used / (used + avail), nil
}
