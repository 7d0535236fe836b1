package host

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/quarantine"
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

// At the emergency level a skill run is refused before any sandbox or
// container, and the skill's record is not touched.
func TestSkillRunsPauseAtDiskEmergency(t *testing.T) {
	ctx := context.Background()
	home := t.TempDir()
	cfg, err := config.Load(config.LoadOptions{Home: home, SkipFiles: true, LookupEnv: func(k string) (string, bool) {
		if k == "BASIC_AUTH_PASS" {
			return "Str0ng!Passw0rd#2026", true
		}
		return "", false // no Docker engine: a run that got past the check would fail differently
	}})
	if err != nil {
		t.Fatal(err)
	}
	sk, err := OpenSkills(ctx, cfg, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close()
	src := filepath.Join(t.TempDir(), "s")
	if err := os.MkdirAll(src, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(src, "skill.yaml"), []byte("id: disk_skill\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.py"), []byte("print(1)\n"), 0o644)
	rec, err := sk.Quarantine.Add(ctx, src, quarantine.Source{Type: quarantine.SourceUser, Origin: "test"}, "user:test")
	if err != nil {
		t.Fatal(err)
	}
	if _, rec, err = sk.Quarantine.Scan(ctx, rec.Key, "user:test"); err != nil {
		t.Fatal(err)
	}
	sk.diskUsage = func(string) (uint64, uint64, error) { return 97, 100, nil }
	_, err = sk.Run(ctx, rec, nil, "user:test", RunOptions{})
	if !errors.Is(err, talos.ErrDiskCritical) || !strings.Contains(err.Error(), "skill runs are paused") {
		t.Fatalf("Run on a full disk: %v, want T103 saying runs are paused", err)
	}
	after, err := sk.Quarantine.Get(ctx, rec.Key)
	if err != nil || after.State != rec.State || after.CleanRuns != 0 {
		t.Errorf("the record changed: %+v %v (was %s)", after, err, rec.State)
	}
	// Below the emergency level the check lets the run through (here it then
	// fails for want of a Docker engine, a different error).
	sk.diskUsage = func(string) (uint64, uint64, error) { return 50, 100, nil }
	if _, err := sk.Run(ctx, rec, nil, "user:test", RunOptions{}); err == nil || errors.Is(err, talos.ErrDiskCritical) {
		t.Errorf("Run on a half-full disk: %v, want it past the disk check", err)
	}
}
