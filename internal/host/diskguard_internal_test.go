package host

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

func TestDiskGuardRefusesNewMemoriesOnlyWhenFull(t *testing.T) {
	full := false
	g := diskGuard{Store: ragtest.NewMemoryStore(4), full: func() bool { return full }}
	rec := []rag.Record{{ID: "a", Document: "x", Embedding: ragtest.Unit(4, 0, 1, 0.1)}}
	if err := g.Upsert(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	full = true
	if err := g.Upsert(context.Background(), rec); !errors.Is(err, talos.ErrDiskCritical) {
		t.Errorf("Upsert on a full disk: %v, want T103", err)
	}
	if n, _ := g.Count(context.Background()); n != 1 {
		t.Errorf("reads still work: Count = %d", n)
	}
	lvl, _, err := DiskLevelOf("/", func(string) (uint64, uint64, error) { return 96, 100, nil })
	if err != nil || lvl != DiskEmergency {
		t.Errorf("DiskLevelOf 96%% = %v, %v", lvl, err)
	}
}

// StatfsUsage agrees with what df prints as Use%.
func TestStatfsUsageLikeDf(t *testing.T) {
	used, total, err := StatfsUsage(t.TempDir())
	if err != nil || total == 0 || used > total {
		t.Fatalf("StatfsUsage = %d, %d, %v", used, total, err)
	}
	out, err := exec.Command("df", "--output=pcent", t.TempDir()).Output()
	if err != nil {
		t.Fatalf("df: %v", err)
	}
	lines := strings.Fields(string(out))
	pct, err := strconv.Atoi(strings.TrimSuffix(lines[len(lines)-1], "%"))
	if err != nil {
		t.Fatalf("df output %q", out)
	}
	got := float64(used) * 100 / float64(total)
	if got < float64(pct)-2 || got > float64(pct)+2 {
		t.Errorf("StatfsUsage says %.1f%% used, df %d%%", got, pct)
	}
}
