package backup_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/backup"
)

// BenchmarkBackupRestore100k backs up and restores a home holding 100,000
// memories of 384 dimensions (plus a skill, a strike and audit logs). It runs only with
// TALOS_OPS_BENCH=1 and -benchtime 1x:
//
//	TALOS_OPS_BENCH=1 go test -run '^$' -bench BackupRestore100k -benchtime 1x ./internal/backup/
func BenchmarkBackupRestore100k(b *testing.B) {
	if os.Getenv("TALOS_OPS_BENCH") != "1" {
		b.Skip("set TALOS_OPS_BENCH=1 to run the operations benchmarks (docs/benchmarks.md)")
	}
	home, _ := newHomeDim(&testing.T{}, 100_000, 384)
	defer os.RemoveAll(filepath.Dir(home))
	archive := filepath.Join(b.TempDir(), "b.tar.gz")
	for b.Loop() {
		f, _ := os.Create(archive)
		start := time.Now()
		m, err := backup.Create(context.Background(), f, backup.Options{Home: home})
		f.Close()
		if err != nil {
			b.Fatal(err)
		}
		took := time.Since(start)
		st, _ := os.Stat(archive)
		os.RemoveAll(home)
		f, _ = os.Open(archive)
		start = time.Now()
		if _, err := backup.Restore(context.Background(), f, backup.RestoreOptions{Home: home}); err != nil {
			b.Fatal(err)
		}
		f.Close()
		b.Logf("| backup of a home with 100,000 memories | %d files, %.1f MB, %s | restore %s |", len(m.Files), float64(st.Size())/1e6,
			took.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
	}
}
