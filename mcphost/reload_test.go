package mcphost_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/talos-ironclad/talos/mcphost"
)

func filePins(t *testing.T, path string) *mcphost.FilePins {
	t.Helper()
	p, err := mcphost.NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// A running host (the daemon) picks up an approval that another host on
// the same pin file (the operator's `talos mcp approve`) saved, without a
// restart; neither process loses the other's pins.
func TestApprovalByAnotherProcessTakesEffect(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "pins.json")
	cfg := func(desc string) mcphost.Config {
		return mcphost.Config{Servers: []mcphost.ServerConfig{
			inproc("s", newServer(textTool("t", desc, "ok"))),
			inproc("other", newServer(textTool("u", "Other", "ok"))),
		}}
	}
	first := startHost(t, cfg("Original"), hostDeps{Pins: filePins(t, path)})
	_ = first.Close()

	daemon := startHost(t, cfg("Changed while Talos was down"), hostDeps{Pins: filePins(t, path)})
	if _, _, ok := daemon.Pending("s"); !ok {
		t.Fatal("the changed server is not quarantined")
	}
	if got, err := daemon.ReloadApprovals(ctx); err != nil || len(got) != 0 {
		t.Fatalf("released before any approval: %v %v", got, err)
	}

	operator := startHost(t, mcphost.Config{Servers: cfg("Changed while Talos was down").Servers[:1]}, hostDeps{Pins: filePins(t, path)})
	d, _, ok := operator.Pending("s")
	if !ok {
		t.Fatal("the operator's host does not see the quarantine")
	}
	if err := operator.Approve(ctx, "s", d.Fingerprint); err != nil {
		t.Fatal(err)
	}

	got, err := daemon.ReloadApprovals(ctx)
	if err != nil || !slices.Equal(got, []string{"s"}) {
		t.Fatalf("ReloadApprovals = %v, %v", got, err)
	}
	if _, _, ok := daemon.Pending("s"); ok {
		t.Fatal("still quarantined in the daemon")
	}
	if res, err := daemon.Call(ctx, "s.t", map[string]any{"path": "a"}); err != nil || res.Text != "ok" {
		t.Fatalf("a call after the approval: %v %+v", err, res)
	}
	// The operator's save kept the pins of the server it does not know.
	b, _ := os.ReadFile(path)
	var pf struct{ Pins map[string]any }
	if err := json.Unmarshal(b, &pf); err != nil || len(pf.Pins) != 2 {
		t.Fatalf("pins after the approval: %v %s", err, b)
	}
}
