package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/layout"
)

func newInitCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create the Talos home: directory tree, config.yaml and a talos.env with generated secrets",
		Long: `Create the Talos home (--home, else $TALOS_HOME, else ~/talos): the directory
tree (skills, keys, logs, data, config, …) with its exact modes, config/config.yaml (every setting as a
comment showing its default) and config/talos.env (mode 0600) with a freshly
generated dashboard password, PostgreSQL password and instance ID.

Existing files are never overwritten unless --force is given (which replaces
both files and generates new secrets). Wrong directory modes are corrected.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			home, err := resolveHome(cmd)
			if err != nil {
				return err
			}
			l, err := layout.New(home, nil)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fixes, err := l.Create()
			if err != nil {
				return err
			}
			for _, f := range fixes {
				fmt.Fprintln(out, "fixed:", f)
			}
			res, err := config.WriteInitialFiles(home, force)
			if err != nil {
				return err
			}
			if _, err := config.Load(config.LoadOptions{Home: home}); err != nil {
				// The environment may override the fresh files badly: say so now.
				fmt.Fprintf(out, "warning: the new configuration does not validate with the current environment:\n%v\n", err)
			}
			fmt.Fprintf(out, `Talos home ready: %s
  tree      %d directories with their spec modes
  config    %s
  secrets   %s (mode 0600; dashboard user admin, password in BASIC_AUTH_PASS)

Next steps:
  talos config validate        check the configuration
  talos run                    start the daemon on embedded defaults (no services needed)
To use real services, set TALOS_REDIS_URL, TALOS_POSTGRES_URL, TALOS_CHROMA_URL,
TALOS_DOCKER_HOST or TALOS_OLLAMA_URL (environment, talos.env or config.yaml).
`, home, len(layout.Tree()), res.ConfigFile, res.EnvFile)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing config.yaml and talos.env (generates new secrets)")
	return cmd
}
