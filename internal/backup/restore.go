package backup

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// RestoreOptions configures Restore.
type RestoreOptions struct {
	// Home is where to restore. Required; created when missing.
	Home string
	// Parts limits the restore to these parts (nil: every part).
	Parts []string
	// DryRun verifies and returns the plan without writing into the home.
	DryRun bool
	// Vectors, when a restored file is VectorExport, is called once the
	// files are in place (so a restored configuration counts) for the
	// store to import the export into, and what closes it. It returns a
	// nil store when the memories live in the home (no Chroma is
	// configured); the export then stays in data/ and Plan.VectorsPending
	// says so. A nil Vectors is the same.
	Vectors func(ctx context.Context) (rag.Store, func() error, error)
}

// Plan is what a restore writes (or would write, on a dry run).
type Plan struct {
	Manifest *Manifest
	Files    []File // the files of the selected parts
	Replaced int    // how many of them exist in the home now
	// VectorsImported is how many memories of VectorExport were upserted
	// into the store of RestoreOptions.Vectors.
	VectorsImported int
	// VectorsPending: VectorExport was restored into the home but not
	// imported, for there is no store outside the home to import it into.
	VectorsPending bool
}

// Restore reads the archive r, verifies it completely (Read), and then
// moves the files of the selected parts into opts.Home, replacing what is
// there; files of the home that the archive does not hold are left alone.
// Key files are written 0600 in a 0700 folder. When data/talos.db is
// restored, SQLite's write-ahead log of the old database is removed with
// it, so the old log is never replayed onto the restored file.
func Restore(ctx context.Context, r io.Reader, opts RestoreOptions) (*Plan, error) {
	const op = "backup.Restore"
	parts := opts.Parts
	if len(parts) == 0 {
		parts = Parts()
	}
	var unknown []string
	for _, p := range parts {
		if !slices.Contains(Parts(), p) {
			unknown = append(unknown, fmt.Sprintf("%q", clip(p)))
		}
	}
	if len(unknown) > 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "--partial: unknown part %s; want some of %s", strings.Join(unknown, ", "), strings.Join(Parts(), ","))
	}
	home := filepath.Clean(opts.Home)
	if err := os.MkdirAll(home, 0o755); err != nil {
		return nil, talos.E(talos.CodeDirPermissions, op, "cannot create "+home, err)
	}
	staging, err := os.MkdirTemp(home, ".restore-")
	if err != nil {
		return nil, talos.E(talos.CodeDirPermissions, op, "cannot stage the restore in "+home, err)
	}
	defer os.RemoveAll(staging)
	m, err := Read(r, staging)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Manifest: m}
	for _, f := range m.Files {
		if slices.Contains(parts, partOf(f.Path)) {
			plan.Files = append(plan.Files, f)
			if _, err := os.Lstat(filepath.Join(home, filepath.FromSlash(f.Path))); err == nil {
				plan.Replaced++
			}
		}
	}
	if opts.DryRun {
		return plan, nil
	}
	for _, f := range plan.Files {
		if err := ctx.Err(); err != nil {
			return plan, err
		}
		if err := place(home, staging, f); err != nil {
			return plan, talos.E(talos.CodeDirPermissions, op, "cannot restore "+f.Path+" (the files before it are restored; run the restore again)", err)
		}
		if f.Path == VectorExport {
			plan.VectorsPending = true
		}
	}
	if plan.VectorsPending {
		if err := importVectors(ctx, home, opts.Vectors, plan); err != nil {
			return plan, err
		}
	}
	return plan, nil
}

// importVectors imports the restored VectorExport into the store of open.
func importVectors(ctx context.Context, home string, open func(context.Context) (rag.Store, func() error, error), plan *Plan) error {
	const op = "backup.Restore"
	if open == nil {
		return nil
	}
	store, closeStore, err := open(ctx)
	if err != nil {
		return talos.E(talos.CodeChroma, op, "the files are restored, but the memory store to import "+VectorExport+" into does not open", err)
	}
	if store == nil {
		return nil
	}
	defer closeStore()
	f, err := os.Open(filepath.Join(home, filepath.FromSlash(VectorExport)))
	if err != nil {
		return err
	}
	defer f.Close()
	plan.VectorsImported, err = ImportVectors(ctx, store, f)
	if err != nil {
		return err
	}
	plan.VectorsPending = false
	return nil
}

// place moves one verified file from staging into home with its mode.
func place(home, staging string, f File) error {
	rel := filepath.FromSlash(f.Path)
	dst := filepath.Join(home, rel)
	mode := f.Mode.Perm() & 0o755 // never setuid, never world-writable
	dirMode := fs.FileMode(0o755)
	if partOf(f.Path) == PartKeys {
		mode, dirMode = 0o600, 0o700
	}
	if partOf(f.Path) == PartConfig && strings.HasSuffix(f.Path, ".env") {
		mode = 0o600
	}
	// Every folder on the way must be a real folder inside home: a symbolic
	// link planted there could redirect the write.
	if err := mkdirNoLinks(home, filepath.Dir(rel), dirMode); err != nil {
		return err
	}
	if st, err := os.Lstat(dst); err == nil && st.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	src := filepath.Join(staging, rel)
	if err := os.Chmod(src, mode); err != nil {
		return err
	}
	if f.Path == "data/talos.db" {
		for _, s := range []string{"-wal", "-shm", "-journal"} {
			if err := os.Remove(dst + s); err != nil && !os.IsNotExist(err) {
				return err
			}
		}
	}
	return os.Rename(src, dst)
}

func mkdirNoLinks(home, rel string, mode fs.FileMode) error {
	if rel == "." {
		return nil
	}
	cur := home
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, part)
		st, err := os.Lstat(cur)
		switch {
		case os.IsNotExist(err):
			if err := os.Mkdir(cur, mode); err != nil {
				return err
			}
		case err != nil:
			return err
		case !st.IsDir():
			return fmt.Errorf("%s is a %v, not a folder: move it away and restore again", cur, st.Mode().Type())
		}
	}
	return nil
}
