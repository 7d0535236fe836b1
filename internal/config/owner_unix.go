//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// ownerUID returns the owner of a file when the platform reports it.
func ownerUID(st fs.FileInfo) (int, bool) {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return int(s.Uid), true
	}
	return 0, false
}
