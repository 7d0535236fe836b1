// Command talos is the Talos daemon and CLI. It is thin: it wires the SDK's
// packages together. Run `talos --help` for the commands.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/redact"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		if e, ok := err.(*exitError); !ok || !e.quiet {
			fmt.Fprintln(os.Stderr, "talos:", redact.Text(err.Error()))
		}
		os.Exit(exitCode(err))
	}
}

// exitError carries a specific process exit code through cobra.
type exitError struct {
	code  int
	err   error
	quiet bool // main prints nothing: the exit code is the whole message
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// withExit wraps err so that main exits with code.
func withExit(code int, err error) error {
	if err == nil {
		return nil
	}
	return &exitError{code: code, err: err}
}

// exitQuietly makes main exit with code without printing err, for commands
// whose exit code passes on another program's (talos reap, like tini).
func exitQuietly(code int, err error) error {
	return &exitError{code: code, err: err, quiet: true}
}

func exitCode(err error) int {
	if e, ok := err.(*exitError); ok {
		return e.code
	}
	return 1
}

// newRootCmd builds the command tree. Each subcommand lives in its own file
// as a newXxxCmd function; add one line here to register it.
func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "talos",
		Short:         "Talos runs an AI agent safely on your own machine",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().String(homeFlag, "", "Talos home directory (overrides $TALOS_HOME; default ~/talos)")
	root.PersistentFlags().StringArray(setFlag, nil,
		"override a configuration variable, NAME=VALUE (repeatable; wins over the environment, talos.env and config.yaml; `talos config vars` lists the names)")
	root.AddCommand(
		newInitCmd(),
		newConfigCmd(),
		newLogsCmd(),
		// subcommands: one line each, e.g. newVersionCmd(),
		newRunCmd(),
		newHealthCmd(),
		newVersionCmd(),
		newScanCmd(),
		newSockproxyCmd(),
		newReapCmd(),
		newAskCmd(),
		newChatCmd(),
		newUnlockCmd(),
		newMemoryCmd(),
		newGPUCmd(),
		newDreamCmd(),
		newSkillCmd(),
		newBackupCmd(),
		newRestoreCmd(),
		newPanicCmd(),
		newMCPCmd(),
		newIdentityCmd(),
	)
	return root
}
