package host

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/orchestrator"
)

// MCPPinsFile keeps the pinned tool definitions of the MCP servers,
// relative to Home: a changed description or schema quarantines the server
// until an operator approves it.
const MCPPinsFile = "data/mcp-pins.json"

// OpenMCP builds the MCP host of cfg from the mcp_servers mapping of
// config.yaml and starts it (discovering every enabled server's tools).
// It returns nil, nil when no server is configured. Servers may only run
// executables under TALOS_MCP_ALLOWED_COMMANDS; Talos's own secrets never
// reach a server and are redacted from arguments and results. A server
// that fails discovery is logged and retried at its first call; the others
// serve.
func OpenMCP(ctx context.Context, cfg *config.Config, audit, log *slog.Logger) (*mcphost.Host, error) {
	data, err := os.ReadFile(cfg.ConfigFile())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	servers, err := mcphost.ParseServers(data)
	if err != nil || len(servers) == 0 {
		return nil, err
	}
	pins, err := openPins(cfg, MCPPinsFile)
	if err != nil {
		return nil, err
	}
	h, err := mcphost.New(mcphost.Config{Servers: servers, AllowedCommands: cfg.MCPAllowedCommands, Secrets: ownSecrets(cfg), Logger: log},
		pins, auditCalls{audit}, nil, mcphost.Hooks{})
	if err != nil {
		return nil, err
	}
	if err := h.Start(ctx); err != nil && log != nil {
		log.Warn("some MCP servers failed to start; they are retried at their first call", "err", err)
	}
	return h, nil
}

// auditCalls writes each tool call's shape (never its values) to the
// tier-1 audit log.
type auditCalls struct{ audit *slog.Logger }

func (a auditCalls) AuditCall(ctx context.Context, r mcphost.AuditRecord) error {
	if a.audit == nil {
		return nil
	}
	args := make([]string, len(r.Args))
	for i, s := range r.Args {
		args[i] = fmt.Sprintf("%s:%d", s.Name, s.Bytes)
	}
	tlog.Audit(ctx, a.audit, "mcp_call", slog.String("server", r.Server), slog.String("tool", r.Tool),
		slog.Bool("allowed", r.Allowed), slog.String("step", string(r.Step)), slog.String("code", string(r.Code)),
		slog.String("reason", r.Reason), slog.String("args", strings.Join(args, ",")))
	return nil
}

// MCPTools offers an MCP host's tools to the chat loop: the catalog as
// native tool definitions, each call through the host's fail-closed
// pipeline; the result goes to the firewall as tool output.
type MCPTools struct{ Host *mcphost.Host }

var _ orchestrator.Tools = MCPTools{}

// Catalog implements orchestrator.Tools. Approvals saved by another process
// are picked up first, and a server that offers no tool yet (its discovery
// at start failed, or it was slow) is asked again, so a turn never goes
// without tools a server can give.
func (t MCPTools) Catalog(ctx context.Context) ([]llm.Tool, string, error) {
	// An operator's `talos mcp approve` (another process) counts from the
	// next turn on, without a restart.
	_, _ = t.Host.ReloadApprovals(ctx) // a server whose pins cannot be read stays quarantined
	for _, s := range t.Host.Status() {
		if s.Tools == 0 && !s.Quarantined && !s.GaveUp {
			_ = t.Host.Refresh(ctx, s.Name) // the failure is the host's to log and count
		}
	}
	c := t.Host.Catalog()
	fns := c.Functions()
	tools := make([]llm.Tool, len(fns))
	for i, f := range fns {
		tools[i] = llm.Tool{Name: f.Name, Description: f.Description, Parameters: f.Parameters}
	}
	return tools, c.Text(), nil
}

// Call implements orchestrator.Tools.
func (t MCPTools) Call(ctx context.Context, call llm.ToolCall) (orchestrator.ToolResult, error) {
	r, err := t.Host.Call(ctx, call.Name, call.Arguments)
	if err != nil {
		return orchestrator.ToolResult{}, err
	}
	text := r.Text
	if r.IsError {
		text = "the tool reported an error: " + text
	}
	return orchestrator.ToolResult{Text: text, Source: firewall.SourceTool}, nil
}
