//go:build unix

package sandbox

import (
	"io/fs"
	"syscall"
)

// owner returns the uid and gid of a file.
func owner(st fs.FileInfo) (uid, gid int, ok bool) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid), int(s.Gid), true
	}
	return 0, 0, false
}
