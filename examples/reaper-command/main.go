// Command reaper-command shows how to run child processes under a
// reaper.Reaper, the one owner of wait4 in the process: many children exit
// at once and each Command still gets its own exit code (never ECHILD), a
// child killed by a signal reports 128+N like a shell, and an orphaned
// grandchild is re-parented to us (a child subreaper) and reaped instead of
// staying a zombie.
//
// It runs /bin/sh children and needs Linux (prctl PR_SET_CHILD_SUBREAPER):
//
//	go run ./examples/reaper-command
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos/reaper"
)

// children is how many children the walkthrough runs at the same time.
const children = 8

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "reaper-command:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	// Subreaper: orphaned descendants are re-parented to this process (not
	// to PID 1) and reaped here. The daemon sets it; PID 1 does not need it.
	r, err := reaper.New(reaper.Config{Subreaper: true}, nil)
	if err != nil {
		return err
	}
	defer r.Close()

	fmt.Fprintf(w, "# %d children exit at the same time; each Command gets its own status.\n", children)
	codes := make([]int, children)
	errs := make([]error, children)
	var wg sync.WaitGroup
	for i := range children {
		wg.Go(func() {
			c := r.CommandContext(ctx, "sh", "-c", "exit "+strconv.Itoa(i))
			codes[i], errs[i] = exitCode(c.Run())
		})
	}
	wg.Wait()
	for i := range children {
		if errs[i] != nil {
			return fmt.Errorf("child %d: %w", i, errs[i])
		}
		fmt.Fprintf(w, "  sh -c 'exit %d' -> exit code %d\n", i, codes[i])
	}

	fmt.Fprintln(w, "# A child killed by a signal reports 128 + the signal number, as a shell does.")
	err = r.Command("sh", "-c", "kill -TERM $$").Run()
	var ee *reaper.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("want an *reaper.ExitError from a killed child, got %v", err)
	}
	fmt.Fprintf(w, "  sh -c 'kill -TERM $$' -> exit code %d (signaled: %t, signal: %v)\n",
		ee.ExitCode(), ee.Exit.Status.Signaled(), ee.Exit.Status.Signal())

	fmt.Fprintln(w, "# A command that does not exist fails at Start, before any fork.")
	err = r.Command("no-such-command-talos-example").Run()
	fmt.Fprintf(w, "  errors.Is(err, exec.ErrNotFound): %t\n", errors.Is(err, exec.ErrNotFound))

	fmt.Fprintln(w, "# The shell starts a background sleep and exits: the sleep is orphaned and")
	fmt.Fprintln(w, "# re-parented to this process; once it ends, WaitPID returns its status.")
	var out strings.Builder
	c := r.Command("sh", "-c", "sleep 60 >/dev/null 2>&1 & echo $!")
	c.Cmd.Stdout = &out
	if err := c.Run(); err != nil {
		return err
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		return fmt.Errorf("the shell printed %q, not a PID", out.String())
	}
	// The orphan is ours now: stop it (the hunt would, after 3 days idle).
	if err := syscall.Kill(orphan, syscall.SIGTERM); err != nil {
		return fmt.Errorf("terminating the orphan %d: %w", orphan, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	exit, err := r.WaitPID(wctx, orphan)
	if err != nil {
		return fmt.Errorf("waiting for the orphan %d: %w", orphan, err)
	}
	fmt.Fprintf(w, "  orphaned sleep terminated and reaped by us: exit code %d\n", exit.Code())

	st := r.Stats()
	fmt.Fprintf(w, "reaper stats: %d reaped, %d delivered to Commands, %d unknown (the orphan), %d running\n",
		st.Reaped, st.Delivered, st.Unknown, st.Running)
	return nil
}

// exitCode turns Command.Run's error into an exit code: nil is 0, an
// *reaper.ExitError carries the code, anything else is a real error.
func exitCode(err error) (int, error) {
	var ee *reaper.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	default:
		return -1, err
	}
}
