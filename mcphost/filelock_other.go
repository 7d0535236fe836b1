//go:build !unix

package mcphost

import "os"

// lockFile is a no-op where flock(2) does not exist: FilePins then merges
// without a lock between processes (within one process its mutex holds).
func lockFile(string) (func(), error) { return func() {}, nil }

// inode is unknown here; modification time and size identify a version.
func inode(os.FileInfo) uint64 { return 0 }
