package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/llm"
)

// The daemon's MCP host (as `talos run` builds it) picks up `talos mcp
// approve`, run as a separate command, at its next turn: no restart.
func TestRunningDaemonPicksUpMCPApprove(t *testing.T) {
	home, set := gatewayHome(t)
	ctx := context.Background()
	if out, _, err := talosCmd(ctx, append([]string{"mcp", "status"}, set...)...); err != nil {
		t.Fatalf("first status (pins on first contact): %v\n%s", err, out)
	}
	// The pinned definition of echo no longer matches what the server offers.
	pinsPath := filepath.Join(home, host.MCPPinsFile)
	b, err := os.ReadFile(pinsPath)
	if err != nil {
		t.Fatal(err)
	}
	var pf map[string]any
	json.Unmarshal(b, &pf)
	for _, tools := range pf["pins"].(map[string]any) {
		tools.(map[string]any)["echo"] = strings.Repeat("0", 64)
	}
	b, _ = json.Marshal(pf)
	os.WriteFile(pinsPath, b, 0o600)

	name, allowed, _ := strings.Cut(set[3], "=")
	cfg, err := config.Load(config.LoadOptions{Home: home, Flags: map[string]string{name: allowed}})
	if err != nil {
		t.Fatal(err)
	}
	daemon, err := host.OpenMCP(ctx, cfg, nil, nil)
	if err != nil || daemon == nil {
		t.Fatalf("OpenMCP: %v", err)
	}
	defer daemon.Close()
	tools := host.MCPTools{Host: daemon}
	names := func() []string {
		fns, _, err := tools.Catalog(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return slices.Collect(func(yield func(string) bool) {
			for _, f := range fns {
				if !yield(f.Name) {
					return
				}
			}
		})
	}
	if n := names(); slices.Contains(n, "everything.echo") {
		t.Fatalf("a quarantined server's tool is offered: %v", n)
	}
	out, _, err := talosCmd(ctx, append([]string{"mcp", "status"}, set...)...)
	fp := regexp.MustCompile(`talos mcp approve everything (\S+)`).FindStringSubmatch(out)
	if err != nil || fp == nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if out, _, err := talosCmd(ctx, append([]string{"mcp", "approve", "everything", fp[1]}, set...)...); err != nil || !strings.Contains(out, "next turn") {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	if n := names(); !slices.Contains(n, "everything.echo") {
		t.Fatalf("the running host did not pick up the approval: %v", n)
	}
	res, err := tools.Call(ctx, llm.ToolCall{Name: "everything.echo", Arguments: map[string]any{"message": "approved"}})
	if err != nil || !strings.Contains(res.Text, "approved") {
		t.Fatalf("a call after the approval: %v %+v", err, res)
	}
}
