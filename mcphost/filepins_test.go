package mcphost_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/talos-ironclad/talos/mcphost"
)

// Two writers on one pin file (the daemon and `talos mcp approve`): each
// sees the other's approvals at once, and a save keeps them, however
// quickly the file was rewritten before.
func TestFilePinsSharedByTwoWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	a, err := mcphost.NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mcphost.NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, id := range []string{"one", "two", "six"} { // rewrites of one size, back to back
		if err := a.SavePins(ctx, id, map[string]string{"t": "h"}); err != nil {
			t.Fatal(err)
		}
		if p, ok, err := b.LoadPins(ctx, id); err != nil || !ok || p["t"] != "h" {
			t.Fatalf("save %d: the other writer does not see %s: %v %v %v", i+1, id, p, ok, err)
		}
	}
	if err := b.SavePins(ctx, "ten", map[string]string{"t": "h"}); err != nil {
		t.Fatal(err)
	}
	c, err := mcphost.NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"one", "two", "six", "ten"} {
		if _, ok, err := c.LoadPins(ctx, id); err != nil || !ok {
			t.Errorf("pins of %s lost: %v", id, err)
		}
	}
}
