package host

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/backup"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/layout"
)

// The backup phase: off unless TALOS_BACKUP_KEEP is set.
const (
	PhaseBackup   = "backup"
	TimeoutBackup = 600 * time.Second
)

// WriteBackup writes a backup of cfg's home to path (backup.WriteFile),
// with an export of the memory collection (empty: the default one) when
// the memories live on Chroma. It returns the manifest, the archive's size
// and where the memories were exported from ("" when they were not).
func WriteBackup(ctx context.Context, cfg *config.Config, path, collection, version string) (*backup.Manifest, int64, string, error) {
	mem, err := OpenBackupMemory(ctx, cfg, MemoryOptions{Collection: collection})
	if err != nil {
		return nil, 0, "", fmt.Errorf("the memories on Chroma cannot be exported: %w", err)
	}
	opts := backup.Options{Home: cfg.Home, PostgresDSN: cfg.PostgresDSN(), TalosVersion: version}
	where := ""
	if mem != nil {
		defer mem.Close()
		opts.Vectors, where = mem.Store, mem.Where
	}
	m, size, err := backup.WriteFile(ctx, path, opts)
	return m, size, where, err
}

// scheduledBackup is the backup phase: with TALOS_BACKUP_KEEP = N > 0 it
// writes a backup of the home to TALOS_HOME/backups (as `talos backup`
// does, with an export of the Chroma collection when the memories live
// there) and deletes the oldest backups there beyond the newest N.
func scheduledBackup(ctx context.Context, cfg *config.Config, version string) (dream.PhaseResult, error) {
	if cfg.BackupKeep == 0 {
		return dream.PhaseResult{Skipped: "scheduled backups are off (TALOS_BACKUP_KEEP is 0); `talos backup` takes one by hand"}, nil
	}
	dir := filepath.Join(cfg.Home, layout.Backups)
	m, size, _, err := WriteBackup(ctx, cfg, filepath.Join(dir, backup.ArchiveName(time.Now())), "", version)
	if err != nil {
		return dream.PhaseResult{}, fmt.Errorf("the backup was not written: %w", err)
	}
	res := dream.PhaseResult{Counters: map[string]int64{"files": int64(len(m.Files)), "bytes": size, "memories_exported": int64(m.VectorRecords)}}
	removed, err := backup.Rotate(dir, cfg.BackupKeep)
	res.Counters["backups_deleted"] = int64(len(removed))
	if err != nil {
		return res, fmt.Errorf("the backup was written, but older ones could not all be deleted: %w", err)
	}
	return res, nil
}
