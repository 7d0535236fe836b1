package vram

import (
	"strings"
)

// ParseCmdline splits the contents of /proc/<pid>/cmdline (arguments
// separated and terminated by NUL bytes) into argv.
func ParseCmdline(data []byte) []string {
	s := strings.TrimRight(string(data), "\x00")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\x00")
}
