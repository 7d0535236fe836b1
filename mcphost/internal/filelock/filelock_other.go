//go:build !unix

package filelock

// Lock is a no-op where flock(2) does not exist: the callers then merge
// without a lock between processes (within one process their own mutexes
// hold).
func Lock(string) (func(), error) { return func() {}, nil }
