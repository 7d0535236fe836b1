package host_test

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/llm"
)

// The mcp_servers of config.yaml reach the chat loop: the real reference
// server's tools are in the catalog, and a call goes through the pipeline.
func TestMCPServersFromConfigYAMLReachTheAgent(t *testing.T) {
	bin := testenv.MCPEverything(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	cfg := loadConfig(t, map[string]string{"TALOS_MCP_ALLOWED_COMMANDS": filepath.Dir(real)})
	os.MkdirAll(filepath.Dir(cfg.ConfigFile()), 0o755)
	yaml := "trust_level: 0\nmcp_servers:\n  everything:\n    command: " + bin + "\n    description: the reference server\n    timeout_seconds: 60\n"
	if err := os.WriteFile(cfg.ConfigFile(), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	h, err := host.OpenMCP(ctx, cfg, nil, slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if err != nil || h == nil {
		t.Fatalf("OpenMCP = %v, %v", h, err)
	}
	defer h.Close()
	tools := host.MCPTools{Host: h}
	// Discovery at start can lose a race with the server's own start-up on
	// a loaded machine; Catalog asks such a server again.
	defs, text, err := tools.Catalog(ctx)
	if err != nil || len(defs) == 0 || !strings.Contains(text, "everything.echo") {
		t.Fatalf("catalog: %d tools, %v\n%s", len(defs), err, text)
	}
	res, err := tools.Call(ctx, llm.ToolCall{ID: "1", Name: "everything.echo", Arguments: map[string]any{"message": "hello from talos"}})
	if err != nil || !strings.Contains(res.Text, "hello from talos") || res.Source != "tool" {
		t.Fatalf("call: %+v, %v", res, err)
	}
	// A command outside TALOS_MCP_ALLOWED_COMMANDS is refused.
	cfg2 := loadConfig(t, map[string]string{"TALOS_MCP_ALLOWED_COMMANDS": "/nonexistent"})
	os.MkdirAll(filepath.Dir(cfg2.ConfigFile()), 0o755)
	os.WriteFile(cfg2.ConfigFile(), []byte(yaml), 0o644)
	if h2, err := host.OpenMCP(ctx, cfg2, nil, nil); err == nil {
		h2.Close()
		t.Error("a server outside the allowlist was accepted")
	}
	// No mcp_servers: no host.
	cfg3 := loadConfig(t, nil)
	if h3, err := host.OpenMCP(ctx, cfg3, nil, nil); h3 != nil || err != nil {
		t.Errorf("without servers: %v, %v", h3, err)
	}
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
