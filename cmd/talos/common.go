package main

import (
	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/config"
)

// homeFlag is the global flag that overrides TALOS_HOME.
const homeFlag = "home"

// homeFrom returns the value of --home as seen by cmd (the root's persistent
// flag, or a local flag of the same name), or "" when not given.
func homeFrom(cmd *cobra.Command) string {
	if f := cmd.Flag(homeFlag); f != nil {
		return f.Value.String()
	}
	return ""
}

// loadConfig loads the configuration for cmd: --home (else TALOS_HOME, else
// ~/talos), then config.yaml, talos.env, the environment and overrides
// (variable name → value, from the command's own flags; may be nil).
// On invalid configuration it returns the Config filled as far as possible
// and a *config.ValidationError listing every problem.
func loadConfig(cmd *cobra.Command, overrides map[string]string) (*config.Config, error) {
	return config.Load(config.LoadOptions{Home: homeFrom(cmd), Flags: overrides})
}

// resolveHome returns the absolute home directory for cmd without reading
// the configuration files.
func resolveHome(cmd *cobra.Command) (string, error) {
	return config.ResolveHome(homeFrom(cmd), nil)
}
