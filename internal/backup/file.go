package backup

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/talos-ironclad/talos/atomicfile"
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
// (mode 0600) beside it, synced, then renamed (atomicfile.Write), so a
// crash never leaves half an archive under path. It creates path's folder
// (0700) if needed and returns the manifest and the archive's size.
func WriteFile(ctx context.Context, path string, opts Options) (*Manifest, int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, 0, err
	}
	var m *Manifest
	var size int64
	err := atomicfile.Write(path, 0o600, func(f *os.File) error {
		var err error
		if m, err = Create(ctx, f, opts); err != nil {
			return err
		}
		st, err := f.Stat()
		if err == nil {
			size = st.Size()
		}
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return m, size, nil
}

// staleTemp is how old a temporary archive must be before Rotate deletes
// it: far longer than any backup takes, so a running one is never touched.
const staleTemp = 24 * time.Hour

// Rotate deletes, in dir, the oldest archives named by ArchiveName beyond
// the newest keep (keep ≥ 1), and returns the names it deleted, oldest
// first. It also deletes the temporary files of archives that a killed
// backup left behind, once they are a day old. Other files in dir are
// never touched.
func Rotate(dir string, keep int) ([]string, error) {
	if keep < 1 {
		return nil, errors.New("backup.Rotate: keep must be at least 1")
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	var errs []error
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		if isArchiveName(e.Name()) {
			names = append(names, e.Name())
			continue
		}
		if isStaleTemp(e) {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	slices.Sort(names)
	if len(names) <= keep {
		return nil, errors.Join(errs...)
	}
	var removed []string
	for _, n := range names[:len(names)-keep] {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, n)
	}
	return removed, errors.Join(errs...)
}

// isStaleTemp reports whether e is the temporary file of an archive
// (atomicfile.TempPrefix of an ArchiveName) older than staleTemp.
func isStaleTemp(e fs.DirEntry) bool {
	name, ok := strings.CutPrefix(e.Name(), ".")
	if !ok {
		return false
	}
	i := strings.LastIndex(name, ".tmp-")
	if i < 0 || !isArchiveName(name[:i]) {
		return false
	}
	info, err := e.Info()
	return err == nil && time.Since(info.ModTime()) > staleTemp
}
