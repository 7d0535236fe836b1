package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/tlog"
)

func TestLogsVerify(t *testing.T) {
	home := filepath.Join(t.TempDir(), "talos")
	if _, err := execTalos(t, "init", "--home", home); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(home, "logs", "tier1")
	h, err := tlog.Open(dir, tlog.Tier1, tlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		tlog.Audit(context.Background(), slog.New(h), "event", slog.Int("i", i))
	}
	h.Close()

	out, err := execTalos(t, "logs", "verify", "--home", home)
	if err != nil || !strings.Contains(out, "OK") || !strings.Contains(out, "5 lines") {
		t.Fatalf("%s %v", out, err)
	}

	path := filepath.Join(dir, "audit.log")
	data, _ := os.ReadFile(path)
	ls := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	cases := map[string][]string{
		"edited":    {ls[0], strings.Replace(ls[1], `"i":1`, `"i":7`, 1), ls[2], ls[3], ls[4]},
		"deleted":   {ls[0], ls[1], ls[3], ls[4]},
		"reordered": {ls[0], ls[2], ls[1], ls[3], ls[4]},
	}
	want := map[string]string{
		"edited":    "FAIL audit.log:2: broken",
		"deleted":   "FAIL audit.log:3: missing",
		"reordered": "FAIL audit.log:2: reordered",
	}
	// The last line deleted together with the anchor: a warning, exit 0.
	os.WriteFile(path, []byte(strings.Join(ls[:4], "\n")+"\n"), 0o640)
	if err := os.Remove(filepath.Join(dir, tlog.HeadFileName)); err != nil {
		t.Fatal(err)
	}
	out, err = execTalos(t, "logs", "verify", "--dir", dir)
	if err != nil || !strings.HasPrefix(out, "WARN ") || !strings.Contains(out, "no anchor file audit.head") || !strings.Contains(out, "OK tier-1 chain intact") {
		t.Errorf("missing anchor: exit %d, output %q", exitCode(err), out)
	}

	for name, lines := range cases {
		os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o640)
		out, err := execTalos(t, "logs", "verify", "--dir", dir)
		if exitCode(err) != 1 || !strings.HasPrefix(out, want[name]) {
			t.Errorf("%s: exit %d, output %q, want %q", name, exitCode(err), out, want[name])
		}
	}
}
