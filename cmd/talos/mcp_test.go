package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
)

// A server whose pinned definitions no longer match is quarantined; the
// operator sees the difference and approves it by its fingerprint.
func TestMCPStatusAndApprove(t *testing.T) {
	bin := testenv.MCPEverything(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	home := initHome(t)
	ctx := context.Background()
	yaml := "mcp_servers:\n  everything:\n    command: " + bin + "\n    timeout_seconds: 60\n"
	if err := os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	set := []string{"--home", home, "--set", "TALOS_MCP_ALLOWED_COMMANDS=" + filepath.Dir(real)}
	out, _, err := talosCmd(ctx, append([]string{"mcp", "status"}, set...)...)
	if err != nil || !strings.Contains(out, "everything") || strings.Contains(out, "QUARANTINED") || !strings.Contains(out, "everything.echo") {
		t.Fatalf("first status: %v\n%s", err, out)
	}
	// Someone changes what a tool was approved as (here: its pinned hash).
	pinsPath := filepath.Join(home, host.MCPPinsFile)
	b, err := os.ReadFile(pinsPath)
	if err != nil {
		t.Fatal(err)
	}
	var pf map[string]any
	json.Unmarshal(b, &pf)
	for _, tools := range pf["pins"].(map[string]any) {
		m := tools.(map[string]any)
		for name := range m {
			if name == "echo" {
				m[name] = strings.Repeat("0", 64)
			}
		}
	}
	b, _ = json.Marshal(pf)
	os.WriteFile(pinsPath, b, 0o600)
	out, _, err = talosCmd(ctx, append([]string{"mcp", "status"}, set...)...)
	fp := regexp.MustCompile(`talos mcp approve everything (\S+)`).FindStringSubmatch(out)
	if err != nil || !strings.Contains(out, "QUARANTINED") || fp == nil {
		t.Fatalf("status after the change: %v\n%s", err, out)
	}
	if _, _, err := talosCmd(ctx, append([]string{"mcp", "approve", "everything", "not-the-fingerprint"}, set...)...); exitCode(err) != exitMCPFailed {
		t.Errorf("approve with a wrong fingerprint: %v", err)
	}
	if out, _, err := talosCmd(ctx, append([]string{"mcp", "approve", "everything", fp[1]}, set...)...); err != nil || !strings.Contains(out, "approved") {
		t.Fatalf("approve: %v\n%s", err, out)
	}
	out, _, err = talosCmd(ctx, append([]string{"mcp", "status"}, set...)...)
	if err != nil || strings.Contains(out, "QUARANTINED") {
		t.Fatalf("status after approval: %v\n%s", err, out)
	}
}
