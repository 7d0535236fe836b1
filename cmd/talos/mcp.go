package main

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/host"
)

// Exit codes of `talos mcp`.
const (
	exitMCPFailed  = 1 // a server or the approval failed
	exitMCPBadArgs = 2 // bad arguments or configuration
)

func newMCPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcp",
		Short: "The MCP tool servers of config.yaml: their state, and approving changed tool definitions",
		Long: `MCP tool servers are listed under mcp_servers: in config.yaml and may only run
programs under TALOS_MCP_ALLOWED_COMMANDS. Their tool definitions are pinned by
hash in TALOS_HOME/` + host.MCPPinsFile + `: a server whose tools changed (a new or
renamed tool, a changed description or schema) is quarantined until an operator
reviews the difference and approves it with its fingerprint.`,
	}
	cmd.AddCommand(newMCPStatusCmd(), newMCPApproveCmd(), newMCPServeCmd(), newMCPConnectCmd(), newMCPTokenCmd(), newMCPGatewayCmd(), newMCPAuditCmd())
	return cmd
}

func newMCPStatusCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Start every server, list its tools, and show what a quarantined one changed",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			h, err := host.OpenMCP(cmd.Context(), cfg, nil, nil)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			w := cmd.OutOrStdout()
			if h == nil {
				fmt.Fprintln(w, "no mcp_servers in config.yaml")
				return nil
			}
			defer h.Close()
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SERVER\tTOOLS\tSTATE")
			for _, s := range h.Status() {
				state := "ok"
				switch {
				case s.Quarantined:
					state = "QUARANTINED: " + termText(s.Reason)
				case s.GaveUp:
					state = fmt.Sprintf("gave up after %d failures", s.Failures)
				}
				fmt.Fprintf(tw, "%s\t%d\t%s\n", s.Name, s.Tools, state)
			}
			tw.Flush()
			for _, s := range h.Status() {
				if d, _, ok := h.Pending(s.Name); ok {
					printDiff(w, s.Name, d.Added, d.Changed, d.Removed, "talos mcp approve "+s.Name+" "+d.Fingerprint)
				}
			}
			fmt.Fprintf(w, "\n%s", termLines(h.Catalog().Text()))
			return nil
		},
	}
}

func newMCPApproveCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "approve SERVER FINGERPRINT",
		Short: "Approve the tool definitions a quarantined server offers now (the fingerprint `talos mcp status` shows)",
		Long: `Approve exactly the definitions you reviewed: the fingerprint from ` + "`talos mcp status`" + `
names them, and a server whose tools changed again since is refused. The
approval is saved in the pin file; a running ` + "`talos run`" + ` uses it from its next
chat turn, without a restart.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			h, err := host.OpenMCP(cmd.Context(), cfg, nil, nil)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			if h == nil {
				return withExit(exitMCPBadArgs, fmt.Errorf("no mcp_servers in config.yaml"))
			}
			defer h.Close()
			if err := h.Approve(cmd.Context(), args[0], args[1]); err != nil {
				return withExit(exitMCPFailed, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "approved the tools of %s; a running talos run uses them from its next turn\n", termText(args[0]))
			return nil
		},
	}
}

// printDiff shows what a quarantined server changed and the command that
// approves it.
func printDiff[A, C any](w io.Writer, server string, added []A, changed []C, removed []string, approveWith string) {
	fmt.Fprintf(w, "\n%s is quarantined: %d tools added, %d changed, %d removed\n", server, len(added), len(changed), len(removed))
	for _, a := range added {
		fmt.Fprintf(w, "  + %s\n", termText(fmt.Sprintf("%+v", a)))
	}
	for _, c := range changed {
		fmt.Fprintf(w, "  ~ %s\n", termText(fmt.Sprintf("%+v", c)))
	}
	for _, r := range removed {
		fmt.Fprintf(w, "  - %s\n", termText(r))
	}
	fmt.Fprintf(w, "approve with: %s\n", approveWith)
}
