//go:build !linux

package daemon

import "errors"

func isSubreaper() bool { return false }

func nofile() (soft, hard uint64, err error) {
	return 0, 0, errors.New("RLIMIT_NOFILE is only read on Linux")
}
