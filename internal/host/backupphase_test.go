package host_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/backup"
	"github.com/talos-ironclad/talos/internal/host"
)

// With TALOS_BACKUP_KEEP=2 a cycle writes a verifiable backup into
// TALOS_HOME/backups and keeps the newest two archives, touching no other
// file; by default the phase is skipped and says how to turn it on.
func TestBackupPhaseRotates(t *testing.T) {
	cfg := loadConfig(t, nil)
	m, err := host.NewMaintenance(cfg, host.MaintenanceDeps{Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := m.RunNow(context.Background(), "default")
	m.Close()
	if err != nil {
		t.Fatal(err)
	}
	if p := phaseOf(rep, host.PhaseBackup); p.Status != dream.StatusSkipped || !strings.Contains(p.Reason, "TALOS_BACKUP_KEEP is 0") {
		t.Errorf("backup phase by default: %+v", p)
	}

	cfg = loadConfig(t, map[string]string{"TALOS_BACKUP_KEEP": "2"})
	dir := filepath.Join(cfg.Home, "backups")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	old := []string{backup.ArchiveName(time.Now().Add(-48 * time.Hour)), backup.ArchiveName(time.Now().Add(-24 * time.Hour)), "keep-me.tar.gz"}
	for _, n := range old {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("old"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	m, err = host.NewMaintenance(cfg, host.MaintenanceDeps{Version: "v-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rep, err = m.RunNow(context.Background(), "keep 2")
	if err != nil {
		t.Fatal(err)
	}
	p := phaseOf(rep, host.PhaseBackup)
	if p.Status != dream.StatusOK || p.Counters["backups_deleted"] != 1 || p.Counters["files"] == 0 || p.Counters["bytes"] == 0 {
		t.Fatalf("backup phase: %+v", p)
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if len(left) != 3 || !slices.Contains(left, old[1]) || !slices.Contains(left, "keep-me.tar.gz") || slices.Contains(left, old[0]) {
		t.Fatalf("backups left: %v", left)
	}
	newest := left[len(left)-1] // "talos-…" sorts after "keep-me…"
	f, err := os.Open(filepath.Join(dir, newest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if st, _ := f.Stat(); st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v, want 0600", st.Mode().Perm())
	}
	man, err := backup.Read(f, t.TempDir())
	if err != nil || man.TalosVersion != "v-test" || int64(len(man.Files)) != p.Counters["files"] {
		t.Errorf("the scheduled backup does not verify: %v (%+v)", err, man)
	}
}
