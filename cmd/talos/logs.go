package main

import (
	"fmt"
	"path/filepath"
	"sort"

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
		Short: "Check the tier-1 audit hash chains; exit 1 naming the first broken, missing or reordered line",
		Long: `Check the tier-1 audit hash chains. Without --dir it checks the daemon's
chain in <home>/logs/tier1 and every socket-proxy chain under
<home>/logs/tier1/sockproxy/<profile>; with --dir, that one chain.

The end of each chain is checked against its anchor file audit.head. When a
chain has lines but no anchor, verify prints a WARN line and still exits 0
(unless a line is broken): deleting the last lines together with the anchor
cannot be told apart from a log whose anchor was never written.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dirs := []string{dir}
			if dir == "" {
				home, err := resolveHome(cmd)
				if err != nil {
					return err
				}
				l, err := layout.New(home, nil)
				if err != nil {
					return err
				}
				dirs = []string{l.LogDir(1)}
				proxies, _ := filepath.Glob(sockproxyAuditDir(home, "*"))
				sort.Strings(proxies)
				dirs = append(dirs, proxies...)
			}
			out := cmd.OutOrStdout()
			for _, d := range dirs {
				rep, err := tlog.Verify(d)
				if err != nil {
					if rep.Break != nil {
						fmt.Fprintf(out, "FAIL %s\n", rep.Break)
					}
					return withExit(1, err)
				}
				for _, w := range rep.Warnings {
					fmt.Fprintf(out, "WARN %s\n", w)
				}
				fmt.Fprintf(out, "OK tier-1 chain intact in %s: %d lines in %d file(s), last seq %d\n",
					d, rep.Lines, len(rep.Files), rep.Last)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "one tier-1 chain directory (default: <home>/logs/tier1 and each <home>/logs/tier1/sockproxy/<profile>)")
	return cmd
}
