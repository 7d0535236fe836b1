package host

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/gateway"
)

// Files of the agent's identity and of the MCP tunnel, relative to Home.
const (
	// IdentityFile is the agent's Ed25519 identity (mode 0600).
	IdentityFile = "keys/identity.json"
	// MCPServePinsFile pins the tool definitions of the commands `talos mcp
	// serve` exposes (kept apart from the daemon's pins, which one process
	// owns).
	MCPServePinsFile = "data/mcp-serve-pins.json"
	// MCPAuthStateFile keeps the revoked capability tokens and the used
	// request nonces, shared by `talos mcp serve` and `talos mcp token
	// revoke`.
	MCPAuthStateFile = "data/mcp-auth-state.json"
	// MCPDecisionsFile is the JSON-lines log of capability decisions that
	// `talos mcp audit export` exports; at 32 MiB it becomes
	// MCPDecisionsFile+".1" (replacing the previous one) and a new file
	// starts (gateway.DecisionFile).
	MCPDecisionsFile = "data/mcp-decisions.jsonl"
)

// MCPPath returns a file of the MCP tunnel (one of the constants above)
// under cfg's home.
func MCPPath(cfg *config.Config, rel string) string {
	return filepath.Join(cfg.Home, filepath.FromSlash(rel))
}

// LoadIdentity loads the agent's identity from IdentityFile, saying how to
// create one when it is missing.
func LoadIdentity(cfg *config.Config) (*gateway.Identity, error) {
	path := MCPPath(cfg, IdentityFile)
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return nil, talos.Errorf(talos.CodeSecretMissing, "host.LoadIdentity", "no identity at %s: create one with `talos identity init --name NAME`", path)
	}
	return gateway.LoadIdentity(path)
}

// OpenMCPCommand builds an MCP host around one stdio server, argv, for
// `talos mcp serve`: the executable must resolve inside
// TALOS_MCP_ALLOWED_COMMANDS (no shell runs it), Talos's secrets never reach
// it and are redacted from its results, and its tool definitions are pinned
// in MCPServePinsFile (a changed definition quarantines it until approved).
func OpenMCPCommand(ctx context.Context, cfg *config.Config, name string, argv []string, log *slog.Logger) (*mcphost.Host, error) {
	pins, err := openPins(cfg, MCPServePinsFile)
	if err != nil {
		return nil, err
	}
	sc := mcphost.ServerConfig{Name: name, AutoStart: true}
	if len(argv) > 0 {
		sc.Command, sc.Args = argv[0], argv[1:]
	}
	h, err := mcphost.New(mcphost.Config{Servers: []mcphost.ServerConfig{sc}, AllowedCommands: cfg.MCPAllowedCommands, Secrets: ownSecrets(cfg), Logger: log},
		pins, auditCalls{log}, nil, mcphost.Hooks{})
	if err != nil {
		return nil, err
	}
	if err := h.Start(ctx); err != nil {
		_ = h.Close()
		return nil, err
	}
	return h, nil
}

// openPins opens the pin file rel (under Home), creating its folder.
func openPins(cfg *config.Config, rel string) (*mcphost.FilePins, error) {
	path := MCPPath(cfg, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return mcphost.NewFilePins(path)
}

// ownSecrets lists the values of Talos's own secrets that are set.
func ownSecrets(cfg *config.Config) []string {
	var secrets []string
	for _, s := range []string{cfg.GeminiAPIKey.Value(), cfg.BasicAuthPass.Value(), cfg.PostgresPassword.Value(), cfg.TailscaleAuthKey.Value()} {
		if s != "" {
			secrets = append(secrets, s)
		}
	}
	return secrets
}
