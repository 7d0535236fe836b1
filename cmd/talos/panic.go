package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/lifecycle"
)

// Exit codes of `talos panic`.
const (
	exitPanicNoDaemon = 1 // no daemon runs in this home
	exitPanicTimeout  = 3 // the daemon did not stop in time
)

// panicWait is how long `talos panic` waits for the daemon to stop: the
// poll of the panic file plus the forced shutdown.
const panicWait = lifecycle.PanicPoll + ShutdownForce + 5*time.Second

func newPanicCmd() *cobra.Command {
	var reason string
	var noWait bool
	cmd := &cobra.Command{
		Use:   "panic",
		Short: "Stop the running daemon now: its one graceful shutdown, from any terminal of its owner",
		Long: `Ask the daemon of TALOS_HOME to shut down: it stops taking requests, drains
for up to 15 s, stops its maintenance, writes its state and exits (forced after
20 s). The request is the file TALOS_HOME/` + lifecycle.PanicFile + ` (0600), which the daemon
checks every 5 s; its reason and your user name go to the audit log. Waits
until the daemon is gone unless --no-wait.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := resolveHome(cmd)
			if err != nil {
				return withExit(exitPanicNoDaemon, err)
			}
			ready := daemon.DefaultReadyPath(home)
			if _, err := os.Stat(ready); errors.Is(err, fs.ErrNotExist) {
				return withExit(exitPanicNoDaemon, fmt.Errorf("no daemon runs in %s (no %s)", home, filepath.Base(ready)))
			}
			if err := lifecycle.RequestPanic(home, lifecycle.PanicRequest{InitiatedBy: actor(), Reason: reason}); err != nil {
				return withExit(exitPanicNoDaemon, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "panic requested in %s; the daemon stops within %s\n", home, lifecycle.PanicPoll)
			if noWait {
				return nil
			}
			deadline := time.Now().Add(panicWait)
			for time.Now().Before(deadline) {
				if _, err := os.Stat(ready); errors.Is(err, fs.ErrNotExist) {
					fmt.Fprintln(cmd.OutOrStdout(), "the daemon has stopped")
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(250 * time.Millisecond):
				}
			}
			return withExit(exitPanicTimeout, fmt.Errorf("the daemon of %s did not stop within %s: kill it (its pid is in %s)", home, panicWait, ready))
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "operator panic", "why, for the audit log")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return once the request is written")
	return cmd
}
