//go:build !unix

package layout

import "io/fs"

// ownerUID is unknown on platforms without Unix ownership.
func ownerUID(fs.FileInfo) (int, bool) { return 0, false }
