package config

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/talos-ironclad/talos"
)

// unsafeFile says why a file that steers the daemon (config.yaml, a
// system prompt) could be changed by someone other than the user running
// it, or "" when it cannot: the file is writable by group or others, it is
// owned by another user (root excepted: root can change anything anyway),
// or its directory lets group or others replace it (writable without the
// sticky bit). The fix is in the message.
func unsafeFile(path string, st fs.FileInfo) string {
	if m := st.Mode().Perm(); m&0o022 != 0 {
		return fmt.Sprintf("%s has mode %04o: group or others can change it; fix: chmod go-w %s", path, m, path)
	}
	if uid, ok := ownerUID(st); ok && uid != os.Geteuid() && uid != 0 {
		return fmt.Sprintf("%s is owned by uid %d, not by this user (uid %d); fix: chown %d %s", path, uid, os.Geteuid(), os.Geteuid(), path)
	}
	dir := filepath.Dir(path)
	if dst, err := os.Stat(dir); err == nil && dst.Mode().Perm()&0o022 != 0 && dst.Mode()&fs.ModeSticky == 0 {
		return fmt.Sprintf("%s is in %s, which has mode %04o: group or others can replace the file; fix: chmod go-w %s", path, dir, dst.Mode().Perm(), dir)
	}
	return ""
}

// fileSafetyProblem is the Problem for a file unsafeFile refuses.
func fileSafetyProblem(v, path, why string) Problem {
	return Problem{Var: v, Value: path, Allowed: "writable only by its owner (this user or root)", Code: talos.CodeDirPermissions,
		Message: why + " (anyone who can change it controls the daemon; it is not used until fixed)"}
}
