//go:build !unix

package mcphost

import "os"

// inode is unknown here; modification time and size identify a version.
func inode(os.FileInfo) uint64 { return 0 }
