package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos"

	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/mcphost/gateway"
)

// Exit codes of `talos identity`.
const (
	exitIdentityFailed  = 1 // the key could not be written or read
	exitIdentityBadArgs = 2 // bad arguments, or an identity already exists
)

func newIdentityCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identity",
		Short: "This agent's Ed25519 identity: its peer ID is what other agents authorize",
		Long: `The identity is an Ed25519 key pair kept in TALOS_HOME/` + host.IdentityFile + ` (mode 0600,
never logged). Its peer ID ("tp1…") is the public key itself: give it to the
peers that should accept this agent (talos mcp serve --authorized-peer).`,
	}
	cmd.AddCommand(newIdentityInitCmd(), newIdentityShowCmd())
	return cmd
}

func newIdentityInitCmd() *cobra.Command {
	var name string
	var force bool
	cmd := &cobra.Command{
		Use:   "init --name NAME",
		Short: "Create this agent's identity (refuses to replace one unless --force)",
		Long: `Create a fresh Ed25519 identity. Replacing an existing one (--force) is a key
rotation: every peer that authorized the old peer ID must be told the new one,
and tokens issued by the old key stop being trusted by their verifiers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(name) == "" {
				return withExit(exitIdentityBadArgs, errors.New(`--name is empty: give the agent a name, for example --name "Assistant/Workstation"`))
			}
			// The name is checked (and the key made) before anything is
			// read or created on disk.
			id, err := gateway.NewIdentity(name)
			if err != nil {
				if talos.CodeOf(err) == talos.CodeConfigInvalid {
					return withExit(exitIdentityBadArgs, fmt.Errorf("--name: %w", err))
				}
				return withExit(exitIdentityFailed, err)
			}
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitIdentityBadArgs, err)
			}
			path := host.MCPPath(cfg, host.IdentityFile)
			if _, err := os.Stat(path); err == nil && !force {
				return withExit(exitIdentityBadArgs, fmt.Errorf("an identity already exists at %s: `talos identity show` prints it; --force replaces it (a key rotation)", path))
			} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
				return withExit(exitIdentityFailed, err)
			}
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return withExit(exitIdentityFailed, err)
			}
			if err := id.WriteFile(path); err != nil {
				return withExit(exitIdentityFailed, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "created identity %s\npeer ID: %s\nkey: %s (mode 0600)\n", termText(id.Name()), id.PeerID(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "the agent's name, for example \"Assistant/Workstation\" (required)")
	cmd.Flags().BoolVar(&force, "force", false, "replace an existing identity (a key rotation)")
	return cmd
}

func newIdentityShowCmd() *cobra.Command {
	var idOnly bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Print this agent's name and peer ID (never the private key)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitIdentityBadArgs, err)
			}
			id, err := host.LoadIdentity(cfg)
			if err != nil {
				return withExit(exitIdentityFailed, err)
			}
			if idOnly {
				fmt.Fprintln(cmd.OutOrStdout(), id.PeerID())
				return nil
			}
			fmt.Fprintf(cmd.OutOrStdout(), "name: %s\npeer ID: %s\n", termText(id.Name()), id.PeerID())
			return nil
		},
	}
	cmd.Flags().BoolVar(&idOnly, "id", false, "print only the peer ID")
	return cmd
}
