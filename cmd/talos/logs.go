package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/tlog"
)

func newLogsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logs",
		Short: "Work with the tiered logs",
	}
	cmd.AddCommand(newLogsVerifyCmd())
	return cmd
}

func newLogsVerifyCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check the tier-1 audit hash chain; exit 1 naming the first broken, missing or reordered line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				home, err := resolveHome(cmd)
				if err != nil {
					return err
				}
				l, err := layout.New(home, nil)
				if err != nil {
					return err
				}
				dir = l.LogDir(1)
			}
			rep, err := tlog.Verify(dir)
			if err != nil {
				if rep.Break != nil {
					fmt.Fprintf(cmd.OutOrStdout(), "FAIL %s\n", rep.Break)
				}
				return withExit(1, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "OK tier-1 chain intact in %s: %d lines in %d file(s), last seq %d\n",
				dir, rep.Lines, len(rep.Files), rep.Last)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "tier-1 log directory (default <home>/logs/tier1)")
	return cmd
}
