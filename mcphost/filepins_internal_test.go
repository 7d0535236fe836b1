package mcphost

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// SavePins merges into what the file holds even when the file's stamp
// (time, size, inode) looks unchanged, as after two rewrites by another
// process within one clock tick: the other process's approval stays.
func TestFilePinsSaveReadsThroughAnUnchangedStamp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	a, err := NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := a.SavePins(ctx, "one", map[string]string{"t": "h1"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.LoadPins(ctx, "one"); err != nil {
		t.Fatal(err)
	}
	if err := a.SavePins(ctx, "two", map[string]string{"t": "h2"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	b.seen = stampOf(st) // the stamp collision
	b.mu.Unlock()
	if err := b.SavePins(ctx, "three", map[string]string{"t": "h3"}); err != nil {
		t.Fatal(err)
	}
	c, err := NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"one", "two", "three"} {
		if _, ok, err := c.LoadPins(ctx, id); err != nil || !ok {
			t.Errorf("pins of %s lost by a save that trusted the stamp: %v", id, err)
		}
	}
}
