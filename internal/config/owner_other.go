//go:build !unix

package config

import "io/fs"

// ownerUID reports no owner where the platform has none.
func ownerUID(fs.FileInfo) (int, bool) { return 0, false }
