package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun runs the walkthrough with real /bin/sh children (the test binary
// becomes the subreaper) and checks every status it prints: the eight
// concurrent exit codes, 143 for SIGTERM, ErrNotFound for a missing command,
// the orphan terminated and reaped through WaitPID, and the reaper's counters (so an extra
// or lost status shows up).
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Errorf("output differs.\n got:\n%s\nwant:\n%s", got, want)
	}
}

const want = `# 8 children exit at the same time; each Command gets its own status.
  sh -c 'exit 0' -> exit code 0
  sh -c 'exit 1' -> exit code 1
  sh -c 'exit 2' -> exit code 2
  sh -c 'exit 3' -> exit code 3
  sh -c 'exit 4' -> exit code 4
  sh -c 'exit 5' -> exit code 5
  sh -c 'exit 6' -> exit code 6
  sh -c 'exit 7' -> exit code 7
# A child killed by a signal reports 128 + the signal number, as a shell does.
  sh -c 'kill -TERM $$' -> exit code 143 (signaled: true, signal: terminated)
# A command that does not exist fails at Start, before any fork.
  errors.Is(err, exec.ErrNotFound): true
# The shell starts a background sleep and exits: the sleep is orphaned and
# re-parented to this process; once it ends, WaitPID returns its status.
  orphaned sleep terminated and reaped by us: exit code 143
reaper stats: 11 reaped, 10 delivered to Commands, 1 unknown (the orphan), 0 running
`
