//go:build unix

package mcphost

import (
	"os/exec"
	"syscall"
)

// ownGroup starts cmd in a process group of its own, so the server and
// everything it starts can be stopped together (and a terminal's Ctrl-C
// reaches the host, which stops its servers, not the servers directly).
func ownGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
}

// killGroup sends SIGKILL to what is left of process group pgid.
func killGroup(pgid int) {
	if pgid > 1 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}
