//go:build !unix

package tlog

import "os"

// lockFile only opens path where flock does not exist.
func lockFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDWR|os.O_CREATE, FileMode)
}
