// Package layout creates and verifies the Talos directory tree (the original
// specification's, plus data/) under one home directory (TALOS_HOME, default
// ~/talos):
//
//	.                  0755  skills/            0755
//	skills/quarantine  0750  skills/active      0755
//	skills/deprecated  0750  keys               0700
//	logs               0755  logs/tier1..2      0750, logs/tier3 0755
//	data               0755  data/redis, data/chromadb, data/postgres 0700
//	config             0755  backups            0750
//	tmp                1777 (sticky)
//
// Create (used by `talos init`) makes missing directories with their exact
// modes whatever the umask. Verify (boot step 2) treats a missing directory
// as fatal (T005 DIR_PERMISSION_FAILED), corrects a wrong mode with a
// warning and returns the corrections as []Fix, and refuses to go on when the
// keys directory is still readable by group or others after the fix attempt,
// is a symlink, or belongs to another user.
//
// Ownership other than the current user is only warned about (the spec's
// fixed 1000:1000 does not fit a daemon run by any user), and the spec's
// mount options (noexec, nosuid, …) are not checked: they only apply to real
// mount points, which the spec never creates.
package layout
