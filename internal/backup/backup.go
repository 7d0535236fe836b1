package backup

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/sqldb"
)

// Format is the archive format this package writes; Restore refuses a
// newer one.
const Format = 1

// ManifestName is the archive's last entry.
const ManifestName = "MANIFEST.json"

// Parts of a home, in archive order.
const (
	PartConfig = "config"
	PartKeys   = "keys"
	PartData   = "data"
	PartLogs   = "logs"
	PartSkills = "skills"
)

// Parts returns every part name.
func Parts() []string { return []string{PartConfig, PartKeys, PartData, PartLogs, PartSkills} }

// partOf returns the part an archive path belongs to.
func partOf(p string) string {
	first, _, _ := strings.Cut(p, "/")
	return first
}

// MaxArchiveFile bounds one file in an archive (and so the memory and disk
// a hostile archive can make Restore spend per entry).
const MaxArchiveFile = 8 << 30

// File is one file of an archive.
type File struct {
	Path   string      `json:"path"` // slash-separated, relative to the home
	Size   int64       `json:"size"`
	Mode   fs.FileMode `json:"mode"`
	SHA256 string      `json:"sha256"`
}

// Manifest describes an archive.
type Manifest struct {
	Format       int       `json:"format"`
	TalosVersion string    `json:"talos_version"`
	Created      time.Time `json:"created"`
	Parts        []string  `json:"parts"`
	Database     string    `json:"database"` // "sqlite" (data/talos.db) or "postgres" (data/postgres.sql)
	// VectorRecords is how many memories VectorExport holds (0: no export;
	// the memories are in the files of data/).
	VectorRecords int    `json:"vector_records,omitempty"`
	Files         []File `json:"files"`
}

// Options configures Create.
type Options struct {
	// Home is the Talos home to back up. Required.
	Home string
	// PostgresDSN, when set, is dumped with pg_dump into data/postgres.sql
	// instead of snapshotting the embedded SQLite file.
	PostgresDSN string
	// TalosVersion is recorded in the manifest.
	TalosVersion string
	// Vectors, when set, is a memory store outside the home (a Chroma
	// collection): its records are exported into VectorExport.
	Vectors rag.Store
}

// skipped are paths under the home never archived: SQLite's live files
// (the snapshot replaces them), locks, scratch and earlier backups.
func skipped(rel string) bool {
	base := path.Base(rel)
	switch {
	case rel == "data/talos.db", rel == "data/talos.db-wal", rel == "data/talos.db-shm", rel == "data/talos.db-journal":
		return true
	case strings.HasSuffix(base, ".lock"), strings.HasPrefix(base, ".restore-"), strings.HasPrefix(base, ".compress-"):
		return true
	}
	return false
}

// Create writes a backup of opts.Home to w and returns its manifest.
func Create(ctx context.Context, w io.Writer, opts Options) (*Manifest, error) {
	const op = "backup.Create"
	home := filepath.Clean(opts.Home)
	if st, err := os.Stat(home); err != nil || !st.IsDir() {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "home %s is not a folder: %v", home, err)
	}
	zw := gzip.NewWriter(w)
	tw := tar.NewWriter(zw)
	m := &Manifest{Format: Format, TalosVersion: opts.TalosVersion, Created: time.Now().UTC(), Parts: Parts(), Database: "sqlite"}
	add := func(rel string, mode fs.FileMode, size int64, r io.Reader) error {
		h := sha256.New()
		hdr := &tar.Header{Name: rel, Mode: int64(mode.Perm()), Size: size, ModTime: m.Created, Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		n, err := io.Copy(io.MultiWriter(tw, h), io.LimitReader(r, size))
		if err != nil {
			return err
		}
		if n != size {
			return fmt.Errorf("%s changed size while being archived (%d of %d bytes)", rel, n, size)
		}
		m.Files = append(m.Files, File{Path: rel, Size: size, Mode: mode.Perm(), SHA256: hex.EncodeToString(h.Sum(nil))})
		return nil
	}
	// The database first: a consistent snapshot, not the live file.
	snap, err := snapshot(ctx, home, opts.PostgresDSN)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "cannot snapshot the relational store", err)
	}
	if snap != nil {
		defer os.Remove(snap.tmp)
		f, err := os.Open(snap.tmp)
		if err != nil {
			return nil, err
		}
		st, _ := f.Stat()
		err = add(snap.rel, 0o600, st.Size(), f)
		f.Close()
		if err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, "cannot archive "+snap.rel, err)
		}
		if snap.rel == "data/postgres.sql" {
			m.Database = "postgres"
		}
	}
	if opts.Vectors != nil {
		n, err := exportVectors(ctx, home, opts.Vectors, m.Created, add)
		if err != nil {
			return nil, talos.E(talos.CodeChroma, op, "cannot export the memories to "+VectorExport, err)
		}
		m.VectorRecords = n
	}
	for _, part := range Parts() {
		root := filepath.Join(home, part)
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) && p == root {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			rel, _ := filepath.Rel(home, p)
			rel = filepath.ToSlash(rel)
			if !d.Type().IsRegular() || skipped(rel) || (opts.Vectors != nil && rel == VectorExport) {
				return nil // folders are recreated from paths; links and devices are never archived
			}
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			defer f.Close()
			st, err := f.Stat()
			if err != nil {
				return err
			}
			return add(rel, st.Mode(), st.Size(), f)
		})
		if err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, "cannot archive "+part, err)
		}
	}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := tw.WriteHeader(&tar.Header{Name: ManifestName, Mode: 0o600, Size: int64(len(mb)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(mb); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return m, nil
}

// exportVectors exports store into a temporary file (the archive needs the
// size first) and adds it as VectorExport; it returns the record count.
func exportVectors(ctx context.Context, home string, store rag.Store, at time.Time, add func(string, fs.FileMode, int64, io.Reader) error) (int, error) {
	tmp, err := tempIn(home, "vectors")
	if err != nil {
		return 0, err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	n, err := ExportVectors(ctx, store, tmp, at)
	if err != nil {
		return 0, err
	}
	size, err := tmp.Seek(0, io.SeekCurrent)
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err == nil {
		err = add(VectorExport, 0o600, size, tmp)
	}
	return n, err
}

// tempIn creates a temporary file for part of a backup in home's tmp
// folder, else (no such folder, or not writable) in the system's.
func tempIn(home, part string) (*os.File, error) {
	tmp, err := os.CreateTemp(filepath.Join(home, "tmp"), ".backup-"+part+"-")
	if err != nil {
		tmp, err = os.CreateTemp("", ".talos-backup-"+part+"-")
	}
	return tmp, err
}

type snap struct{ rel, tmp string }

// snapshot takes a consistent copy of the relational store into a
// temporary file: VACUUM INTO for the embedded SQLite file, pg_dump for
// PostgreSQL. No store yet: nil.
func snapshot(ctx context.Context, home, pgDSN string) (*snap, error) {
	tmp, err := tempIn(home, "db")
	if err != nil {
		return nil, err
	}
	name := tmp.Name()
	tmp.Close()
	if pgDSN != "" {
		if _, err := exec.LookPath("pg_dump"); err != nil {
			os.Remove(name)
			return nil, errors.New("pg_dump is not installed: install the PostgreSQL client (apt-get install postgresql-client) to back up a PostgreSQL store")
		}
		var stderr bytes.Buffer
		cmd := exec.CommandContext(ctx, "pg_dump", "--no-owner", "--no-privileges", "--file", name, "--dbname", pgDSN)
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			os.Remove(name)
			return nil, fmt.Errorf("pg_dump: %v: %s", err, scrub(stderr.String(), pgDSN))
		}
		return &snap{rel: "data/postgres.sql", tmp: name}, nil
	}
	os.Remove(name) // VACUUM INTO wants a new file
	live := filepath.Join(home, "data", "talos.db")
	if _, err := os.Stat(live); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	db, err := sqldb.Open(ctx, live)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, "VACUUM INTO ?", name); err != nil {
		os.Remove(name)
		return nil, err
	}
	return &snap{rel: "data/talos.db", tmp: name}, nil
}

// scrub keeps a DSN's password out of a message.
func scrub(msg, dsn string) string {
	if i := strings.Index(dsn, "://"); i >= 0 {
		if at := strings.LastIndex(dsn, "@"); at > i {
			if colon := strings.Index(dsn[i+3:at], ":"); colon >= 0 {
				pass := dsn[i+3+colon+1 : at]
				if pass != "" {
					msg = strings.ReplaceAll(msg, pass, "xxxxx")
				}
			}
		}
	}
	return msg
}

// safePath reports why an archive path may not be written, or "".
func safePath(p string) string {
	switch {
	case p == "" || strings.HasPrefix(p, "/") || strings.Contains(p, "\\"):
		return "absolute or empty path"
	case strings.ContainsRune(p, 0):
		return "NUL in path"
	case path.Clean(p) != p:
		return "path is not clean"
	case p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "/../"):
		return "path leaves the home"
	case !slices.Contains(Parts(), partOf(p)) && p != ManifestName:
		return "not under config, keys, data, logs or skills"
	}
	return ""
}

// Read reads an archive from r into the folder staging (which must exist
// and be empty), checks it against its manifest and returns the manifest.
// Nothing outside staging is written. Any problem — an unsafe entry, a
// link, a file missing, unlisted, resized or changed, a truncated stream, a
// newer format — is an error.
func Read(r io.Reader, staging string) (*Manifest, error) {
	const op = "backup.Read"
	bad := func(format string, args ...any) error {
		return talos.Errorf(talos.CodeConfigInvalid, op, "archive refused: "+format, args...)
	}
	zr, err := gzip.NewReader(r)
	if err != nil {
		return nil, bad("not a gzip stream: %v", err)
	}
	tr := tar.NewReader(zr)
	type got struct {
		size int64
		sum  string
	}
	seen := map[string]got{}
	var manifest []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, bad("truncated or damaged: %v", err)
		}
		name := hdr.Name
		if why := safePath(name); why != "" {
			return nil, bad("entry %q: %s", clip(name), why)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, bad("entry %q is a %s, not a regular file: links and devices are never restored", clip(name), typeName(hdr.Typeflag))
		}
		if manifest != nil {
			return nil, bad("entry %q after the manifest", clip(name))
		}
		if hdr.Size < 0 || hdr.Size > MaxArchiveFile {
			return nil, bad("entry %q of %d bytes is over the %d limit", clip(name), hdr.Size, int64(MaxArchiveFile))
		}
		if name == ManifestName {
			if hdr.Size > 64<<20 {
				return nil, bad("manifest of %d bytes", hdr.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, bad("truncated manifest: %v", err)
			}
			manifest = b
			continue
		}
		if _, dup := seen[name]; dup {
			return nil, bad("entry %q appears twice", clip(name))
		}
		dst := filepath.Join(staging, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(f, h), tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, bad("truncated in %q: %v", clip(name), err)
		}
		seen[name] = got{n, hex.EncodeToString(h.Sum(nil))}
	}
	if _, err := io.Copy(io.Discard, zr); err != nil {
		return nil, bad("truncated or damaged after the last entry: %v", err)
	}
	if manifest == nil {
		return nil, bad("no %s: incomplete archive", ManifestName)
	}
	var m Manifest
	if err := json.Unmarshal(manifest, &m); err != nil {
		return nil, bad("manifest does not parse: %v", err)
	}
	if m.Format > Format {
		return nil, bad("format %d is newer than this Talos reads (%d): restore it with a newer Talos", m.Format, Format)
	}
	if m.Format < 1 {
		return nil, bad("format %d is not a Talos backup format", m.Format)
	}
	listed := map[string]bool{}
	var problems []string
	for _, f := range m.Files {
		if why := safePath(f.Path); why != "" || f.Path == ManifestName {
			return nil, bad("manifest lists %q: %s", clip(f.Path), why)
		}
		listed[f.Path] = true
		g, ok := seen[f.Path]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("%s is listed but missing", f.Path))
		case g.size != f.Size:
			problems = append(problems, fmt.Sprintf("%s is %d bytes, the manifest says %d", f.Path, g.size, f.Size))
		case g.sum != f.SHA256:
			problems = append(problems, fmt.Sprintf("%s does not match its SHA-256: altered", f.Path))
		}
	}
	for p := range seen {
		if !listed[p] {
			problems = append(problems, fmt.Sprintf("%s is in the archive but not in the manifest", p))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return nil, bad("%s", strings.Join(problems, "; "))
	}
	return &m, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeSymlink:
		return "symbolic link"
	case tar.TypeLink:
		return "hard link"
	case tar.TypeDir:
		return "folder"
	case tar.TypeChar, tar.TypeBlock:
		return "device"
	case tar.TypeFifo:
		return "pipe"
	}
	return fmt.Sprintf("type %q entry", t)
}

func clip(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	q := fmt.Sprintf("%q", s)
	return q[1 : len(q)-1]
}
