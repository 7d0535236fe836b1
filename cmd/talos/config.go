package main

import (
	"errors"
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/config"
)

// exitConfigInvalid is the exit code of `talos config validate` on an
// invalid configuration.
const exitConfigInvalid = 2

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the configuration",
	}
	cmd.AddCommand(newConfigValidateCmd(), newConfigVarsCmd())
	return cmd
}

func newConfigValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check config.yaml, talos.env and the environment; list every problem (exit 2)",
		Long: `Resolve the configuration exactly as talos run does (--set flags >
environment > talos.env > config.yaml > defaults) and check every variable against its
range. Every problem is printed on its own line, starting with the variable
name; secrets are never shown. Exit codes: 0 valid, 2 invalid.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			var ve *config.ValidationError
			if errors.As(err, &ve) {
				w := cmd.OutOrStdout()
				for _, p := range ve.Problems {
					src := ""
					if p.Source != "" && p.Source != "default" {
						src = " [" + p.Source + "]"
					}
					fmt.Fprintf(w, "%s: %s%s\n", p.Var, p.Message, src)
				}
				return withExit(exitConfigInvalid, fmt.Errorf("configuration in %s is invalid: %d problem(s)", cfg.Home, len(ve.Problems)))
			}
			if err != nil {
				return withExit(exitConfigInvalid, err)
			}
			services := 0
			for _, u := range []string{cfg.RedisURL, cfg.PostgresURL, cfg.ChromaURL, cfg.DockerHost, cfg.OllamaURL} {
				if u != "" {
					services++
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "configuration OK: %s (%d variables, %d of 5 services configured, the rest on embedded defaults)\n",
				cfg.Home, len(config.Variables()), services)
			return nil
		},
	}
}

func newConfigVarsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "vars",
		Short: "List every configuration variable with its default and allowed values",
		Long: `List every variable the configuration understands, one per line: name,
default and what is allowed. These names are valid in the environment, in
talos.env, in config.yaml (in lower case) and in --set NAME=VALUE. Secrets
are marked and their values are never shown.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tDEFAULT\tALLOWED")
			for _, v := range config.Describe() {
				def := v.Default
				switch {
				case v.Secret:
					def = "(secret)"
				case def == "":
					def = "(empty)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\n", v.Name, def, v.Allowed)
			}
			return w.Flush()
		},
	}
}
