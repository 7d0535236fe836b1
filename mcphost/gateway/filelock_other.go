//go:build !unix

package gateway

// lockFile is a no-op where flock(2) does not exist: FileState then merges
// without a lock between processes (within one process each change is
// still one read-merge-write).
func lockFile(string) (func(), error) { return func() {}, nil }
