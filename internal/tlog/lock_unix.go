//go:build unix

package tlog

import (
	"os"
	"syscall"
)

// lockFile opens path and takes an exclusive, non-blocking flock on it. The
// lock is released when the file is closed (or the process exits).
func lockFile(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}
