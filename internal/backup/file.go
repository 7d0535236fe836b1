package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Archive names given by ArchiveName: "talos-20260102T030405Z.tar.gz".
const (
	ArchivePrefix = "talos-"
	ArchiveSuffix = ".tar.gz"
	archiveTime   = "20060102T150405Z"
)

// ArchiveName is the file name of a backup taken at t (UTC, to the
// second); names sort in time order.
func ArchiveName(t time.Time) string {
	return ArchivePrefix + t.UTC().Format(archiveTime) + ArchiveSuffix
}

// isArchiveName reports whether name is one ArchiveName gives.
func isArchiveName(name string) bool {
	stamp, ok := strings.CutPrefix(name, ArchivePrefix)
	if !ok {
		return false
	}
	stamp, ok = strings.CutSuffix(stamp, ArchiveSuffix)
	if !ok {
		return false
	}
	_, err := time.Parse(archiveTime, stamp)
	return err == nil
}

// WriteFile writes a backup of opts.Home to path: into a temporary file
// (mode 0600) beside it, synced, then renamed, so a crash never leaves half
// an archive under path. It creates path's folder (0700) if needed and
// returns the manifest and the archive's size.
func WriteFile(ctx context.Context, path string, opts Options) (*Manifest, int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".backup-*.tmp")
	if err != nil {
		return nil, 0, err
	}
	defer os.Remove(tmp.Name())
	m, err := Create(ctx, tmp, opts)
	if err == nil {
		err = tmp.Sync()
	}
	var size int64
	if err == nil {
		var st os.FileInfo
		if st, err = tmp.Stat(); err == nil {
			size = st.Size()
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return nil, 0, err
	}
	return m, size, nil
}

// Rotate deletes, in dir, the oldest archives named by ArchiveName beyond
// the newest keep (keep ≥ 1), and returns the names it deleted, oldest
// first. Other files in dir are never touched.
func Rotate(dir string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, errors.New("backup.Rotate: keep must be at least 1")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		if e.Type().IsRegular() && isArchiveName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	slices.Sort(names)
	if len(names) <= keep {
		return nil, nil
	}
	var removed []string
	var errs []error
	for _, n := range names[:len(names)-keep] {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}
