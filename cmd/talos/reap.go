package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/reaper"
)

// newReapCmd is `talos reap -- CMD ARGS`: a tiny init (like tini) for
// containers and process trees. Logic lives in reaper.RunInit.
func newReapCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reap -- COMMAND [ARGS...]",
		Short: "Run COMMAND as a child of a minimal init: forward signals, reap orphans, exit with its code",
		Long: `reap runs COMMAND in its own process group and stays its parent, the way tini does:
SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are forwarded to the group,
every orphan re-parented to reap is reaped (as PID 1 in a container or PID
namespace, otherwise as a child subreaper), and reap exits with COMMAND's exit
code, or 128+N if signal N killed it (127: command not found, 126: cannot run).`,
		Example: `  talos reap -- sleep 10
  unshare --pid --fork --mount-proc talos reap -- sh -c 'my-server'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code, err := reaper.RunInit(cmd.Context(), reaper.InitConfig{
				Args:   args,
				Stdin:  cmd.InOrStdin(),
				Stdout: cmd.OutOrStdout(),
				Stderr: cmd.ErrOrStderr(),
			})
			if err != nil {
				return withExit(code, err)
			}
			if code != 0 {
				return exitQuietly(code, fmt.Errorf("reap: %s exited with code %d", args[0], code))
			}
			return nil
		},
	}
}
