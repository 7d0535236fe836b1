package quarantine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/talos-ironclad/talos"
)

// Limits on a skill's folder. The spec caps a skill's code at 1 MiB
// (code.size_bytes ≤ 1048576); MaxSkillFiles keeps a folder of many empty
// files from costing as much as a big one.
const (
	MaxSkillBytes = 1 << 20
	MaxSkillFiles = 1000
	MaxPathLen    = 255
)

// hashDomain starts every content hash, so that a skill hash can never equal
// the hash of some other Talos encoding of the same bytes.
const hashDomain = "talos-skill-v1\x00"

// Content describes the files of a skill folder and their content hash.
type Content struct {
	// Hash is the lower-case hex SHA-256 of the canonical encoding: the
	// bytes "talos-skill-v1" and a NUL, then for each regular file in
	// byte-wise order of its slash-separated path relative to the folder:
	// the path, a NUL, its size in decimal ASCII, a NUL and its bytes.
	// Folders contribute only through the paths of the files in them, so an
	// empty folder does not change the hash; file modes and times do not
	// either.
	Hash  string
	Files []File // in hash order
	Size  int64  // total bytes of all files
}

// File is one regular file of a skill folder.
type File struct {
	Path string // slash-separated, relative to the folder
	Size int64
}

// HashDir reads every file under dir and returns its content hash. It
// refuses (code T302) a folder that holds a symbolic link, a device, socket
// or pipe, a name with control characters or invalid UTF-8, a path longer
// than MaxPathLen, more than MaxSkillFiles files or more than MaxSkillBytes
// bytes; dir itself must be a real folder, not a link to one. Files are
// opened through an os.Root, so nothing outside dir is ever read.
func HashDir(dir string) (Content, error) {
	return walkSkill("quarantine.HashDir", dir, nil)
}

// walkSkill visits every regular file of dir in hash order, feeding it to
// the hash and, when visit is not nil, to visit as well. A file that
// changes size while it is read is refused.
func walkSkill(op, dir string, visit func(rel string, r io.Reader) error) (Content, error) {
	refuse := func(format string, args ...any) (Content, error) {
		return Content{}, talos.Errorf(talos.CodeSkillSandbox, op, "skill folder %s: %s", clip(dir, 120), fmt.Sprintf(format, args...))
	}
	st, err := os.Lstat(dir)
	switch {
	case err != nil:
		return Content{}, talos.E(talos.CodeSkillSandbox, op, "cannot read skill folder "+clip(dir, 120), err)
	case st.Mode()&fs.ModeSymlink != 0:
		return refuse("is a symbolic link; give the real folder")
	case !st.IsDir():
		return refuse("is not a folder")
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return Content{}, talos.E(talos.CodeSkillSandbox, op, "cannot open skill folder "+clip(dir, 120), err)
	}
	defer root.Close()

	var files []File
	var total int64
	var problems []string
	entries := 0
	err = fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		// Stop early on a huge tree instead of walking all of it.
		entries++
		if len(problems) >= 10 || len(files) > MaxSkillFiles || total > MaxSkillBytes || entries > 4*MaxSkillFiles {
			return fs.SkipAll
		}
		if !utf8.ValidString(p) || hasControl(p, false) || strings.Contains(p, "\\") {
			problems = append(problems, fmt.Sprintf("%q: names must be UTF-8 without control characters or '\\'", clip(p, 80)))
			return nil
		}
		if len(p) > MaxPathLen {
			problems = append(problems, fmt.Sprintf("%s: path longer than %d bytes", clip(p, 80), MaxPathLen))
			return nil
		}
		t := d.Type()
		switch {
		case t.IsDir():
			return nil
		case t&fs.ModeSymlink != 0:
			problems = append(problems, fmt.Sprintf("%s is a symbolic link: skills may hold only regular files and folders", clip(p, 80)))
			return nil
		case !t.IsRegular():
			problems = append(problems, fmt.Sprintf("%s is a %s: skills may hold only regular files and folders", clip(p, 80), kind(t)))
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files = append(files, File{Path: p, Size: info.Size()})
		total += info.Size()
		return nil
	})
	if err != nil {
		return Content{}, talos.E(talos.CodeSkillSandbox, op, "cannot walk skill folder "+clip(dir, 120), err)
	}
	if len(problems) > 0 {
		return refuse("%s", strings.Join(problems, "; "))
	}
	if len(files) > MaxSkillFiles {
		return refuse("more than %d files", MaxSkillFiles)
	}
	if total > MaxSkillBytes {
		return refuse("more than %d bytes (1 MiB)", MaxSkillBytes)
	}
	if entries > 4*MaxSkillFiles {
		return refuse("more than %d files and folders", 4*MaxSkillFiles)
	}
	sort.Slice(files, func(i, j int) bool { return files[i].Path < files[j].Path })

	h := sha256.New()
	io.WriteString(h, hashDomain)
	for _, f := range files {
		io.WriteString(h, f.Path+"\x00"+strconv.FormatInt(f.Size, 10)+"\x00")
		if err := readOne(root, f, h, visit); err != nil {
			return Content{}, talos.E(talos.CodeSkillSandbox, op, "skill folder "+clip(dir, 120)+": "+f.Path, err)
		}
	}
	return Content{Hash: hex.EncodeToString(h.Sum(nil)), Files: files, Size: total}, nil
}

func readOne(root *os.Root, f File, h io.Writer, visit func(string, io.Reader) error) error {
	fh, err := root.Open(filepath.FromSlash(f.Path))
	if err != nil {
		return err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return errors.New("changed into something that is not a regular file while it was read")
	}
	lr := &io.LimitedReader{R: fh, N: f.Size + 1}
	var n int64
	if visit != nil {
		pr, pw := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := visit(f.Path, pr)
			pr.CloseWithError(err)
			done <- err
		}()
		n, err = io.Copy(io.MultiWriter(h, pw), lr)
		pw.CloseWithError(err)
		if verr := <-done; err == nil {
			err = verr
		}
	} else {
		n, err = io.Copy(h, lr)
	}
	if err != nil {
		return err
	}
	if n != f.Size {
		return fmt.Errorf("changed size while it was read (%d bytes, then %d)", f.Size, n)
	}
	return nil
}

func kind(t fs.FileMode) string {
	switch {
	case t&fs.ModeNamedPipe != 0:
		return "named pipe"
	case t&fs.ModeSocket != 0:
		return "socket"
	case t&fs.ModeDevice != 0:
		return "device"
	}
	return "special file"
}

// copySkill copies the files of src into dst, which must not exist, with
// folders made dirMode and files fileMode, and returns the content hash of
// what it read. It writes into a new sibling folder and renames it to dst
// at the end, so dst is either absent or complete.
func copySkill(op, src, dst string, dirMode, fileMode fs.FileMode) (Content, error) {
	parent := filepath.Dir(dst)
	if err := os.MkdirAll(parent, dirMode); err != nil {
		return Content{}, talos.E(talos.CodeDirPermissions, op, "cannot create "+parent, err)
	}
	tmp, err := os.MkdirTemp(parent, tmpPrefix+filepath.Base(dst)+"-")
	if err != nil {
		return Content{}, talos.E(talos.CodeDirPermissions, op, "cannot create a folder in "+parent, err)
	}
	ok := false
	defer func() {
		if !ok {
			os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, dirMode); err != nil {
		return Content{}, talos.E(talos.CodeDirPermissions, op, "cannot set the mode of "+tmp, err)
	}
	out, err := os.OpenRoot(tmp)
	if err != nil {
		return Content{}, talos.E(talos.CodeDirPermissions, op, "cannot open "+tmp, err)
	}
	defer out.Close()
	c, err := walkSkill(op, src, func(rel string, r io.Reader) error {
		if d := path.Dir(rel); d != "." {
			if err := out.MkdirAll(filepath.FromSlash(d), dirMode); err != nil {
				return err
			}
		}
		w, err := out.OpenFile(filepath.FromSlash(rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, r); err != nil {
			w.Close()
			return err
		}
		if err := w.Sync(); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
	if err != nil {
		return Content{}, err
	}
	if err := os.Rename(tmp, dst); err != nil {
		return Content{}, talos.E(talos.CodeDirPermissions, op, "cannot rename the copy to "+dst, err)
	}
	ok = true
	syncDir(parent)
	return c, nil
}

// tmpPrefix starts the name of a folder that is still being written;
// Reconcile removes such folders left by a crash.
const tmpPrefix = ".tmp-"

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}
