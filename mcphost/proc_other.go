//go:build !unix

package mcphost

import "os/exec"

// ownGroup does nothing where process groups do not exist.
func ownGroup(*exec.Cmd) {}

// killGroup does nothing where process groups do not exist.
func killGroup(int) {}
