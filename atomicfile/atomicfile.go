package atomicfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFile atomically replaces path with data, created with mode. The
// temporary file lives in path's directory (a rename is atomic only within
// one file system) and is removed on any failure, leaving the old file as it
// was. The error names the step and the file that failed.
func WriteFile(path string, data []byte, mode fs.FileMode) error {
	return Write(path, mode, func(f *os.File) error {
		if _, err := f.Write(data); err != nil {
			return fmt.Errorf("write %s: %w", f.Name(), err)
		}
		return nil
	})
}

// TempPrefix is how the temporary file of path's replacement is named
// before its random suffix: "." + the base name + ".tmp-". A crash can leave
// one behind; a program that writes into a folder it owns may remove old
// ones.
func TempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// Write atomically replaces path with what write writes to the file it is
// given (created with mode, in path's directory), as WriteFile does:
// synced, renamed over path, the directory synced; on any failure,
// write's included (returned as it is), the temporary file is removed and
// path is left as it was.
func Write(path string, mode fs.FileMode, write func(f *os.File) error) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, TempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("write %s: create a temporary file in %s: %w (check the directory exists and is writable)", path, dir, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: chmod %s: %w", path, tmp, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: sync %s: %w", path, tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: close %s: %w", path, tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write %s: rename %s over it: %w", path, tmp, err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // make the rename durable; best effort (not every file system supports it)
		_ = d.Close()
	}
	return nil
}
