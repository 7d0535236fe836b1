package layout

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/talos-ironclad/talos"
)

// Relative paths of the tree.
const (
	Skills           = "skills"
	SkillsQuarantine = "skills/quarantine"
	SkillsActive     = "skills/active"
	SkillsDeprecated = "skills/deprecated"
	Keys             = "keys"
	Logs             = "logs"
	LogsTier1        = "logs/tier1"
	LogsTier2        = "logs/tier2"
	LogsTier3        = "logs/tier3"
	Data             = "data"
	DataRedis        = "data/redis"
	DataChroma       = "data/chromadb"
	DataPostgres     = "data/postgres"
	Config           = "config"
	Backups          = "backups"
	Tmp              = "tmp"
)

// Dir is one directory of the tree: its path relative to the home, its exact
// mode (permission bits plus the sticky bit for tmp) and what it holds.
type Dir struct {
	Rel     string
	Mode    fs.FileMode
	Purpose string
}

// Tree returns the directories of the tree in creation order (parents
// first). The root is Rel ".". data/ is missing from the original
// specification's table; it gets 755 like its siblings.
func Tree() []Dir {
	return []Dir{
		{".", 0o755, "root"},
		{Skills, 0o755, "skills"},
		{SkillsQuarantine, 0o750, "untrusted skills"},
		{SkillsActive, 0o755, "approved skills"},
		{SkillsDeprecated, 0o750, "retired skills"},
		{Keys, 0o700, "API keys and crypto material"},
		{Logs, 0o755, "logs"},
		{LogsTier1, 0o750, "tier 1: security and audit"},
		{LogsTier2, 0o750, "tier 2: operations"},
		{LogsTier3, 0o755, "tier 3: debug and trace"},
		{Data, 0o755, "data"},
		{DataRedis, 0o700, "Redis persistence"},
		{DataChroma, 0o700, "vectors"},
		{DataPostgres, 0o700, "PostgreSQL files"},
		{Config, 0o755, "config.yaml and talos.env"},
		{Backups, 0o750, "snapshots"},
		{Tmp, 0o777 | fs.ModeSticky, "ephemeral, sticky"},
	}
}

// Fix records a mode that was wrong and has been corrected.
type Fix struct {
	Path string      // absolute path
	Was  fs.FileMode // mode found
	Now  fs.FileMode // mode set
}

// String formats as the spec's log line: "path has permissions A, expected E".
func (f Fix) String() string {
	return fmt.Sprintf("%s has permissions %s, expected %s (corrected)", f.Path, modeString(f.Was), modeString(f.Now))
}

// Layout creates and verifies the tree under one home directory.
type Layout struct {
	home  string
	log   *slog.Logger
	chmod func(string, fs.FileMode) error // os.Chmod; tests replace it
}

// New returns a Layout for home (an absolute path, e.g. config.Config.Home).
// log may be nil (discard).
func New(home string, log *slog.Logger) (*Layout, error) {
	if home == "" {
		return nil, talos.Errorf(talos.CodeDirPermissions, "layout.New", "home directory is empty; set TALOS_HOME or pass --home")
	}
	abs, err := filepath.Abs(home)
	if err != nil {
		return nil, talos.E(talos.CodeDirPermissions, "layout.New", fmt.Sprintf("home %q cannot be made absolute", home), err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Layout{home: abs, log: log, chmod: os.Chmod}, nil
}

// Home returns the absolute root of the tree.
func (l *Layout) Home() string { return l.home }

// Path returns the absolute path of rel (one of the constants above).
func (l *Layout) Path(rel string) string { return filepath.Join(l.home, filepath.FromSlash(rel)) }

// LogDir returns the directory of log tier 1, 2 or 3.
func (l *Layout) LogDir(tier int) string {
	return l.Path(fmt.Sprintf("%s/tier%d", Logs, tier))
}

// Create makes every missing directory with its exact mode (chmod after
// mkdir, so the umask does not matter) and corrects wrong modes of existing
// ones. It is idempotent. It returns the modes it corrected (not the ones
// it created).
func (l *Layout) Create() ([]Fix, error) {
	for _, d := range Tree() {
		p := l.Path(d.Rel)
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o700); err != nil {
				return nil, talos.E(talos.CodeDirPermissions, "layout.Create", fmt.Sprintf("cannot create %s; check that the parent is writable", p), err)
			}
			if err := l.chmod(p, d.Mode); err != nil {
				return nil, talos.E(talos.CodeDirPermissions, "layout.Create", fmt.Sprintf("cannot set mode %s on %s", modeString(d.Mode), p), err)
			}
			l.log.Info("created directory", "path", p, "mode", modeString(d.Mode))
		case err != nil:
			return nil, talos.E(talos.CodeDirPermissions, "layout.Create", fmt.Sprintf("cannot stat %s", p), err)
		case !st.IsDir() && !(st.Mode()&fs.ModeSymlink != 0 && d.Rel != Keys):
			return nil, talos.Errorf(talos.CodeDirPermissions, "layout.Create", "%s exists but is not a directory; move it away and run `talos init` again", p)
		}
	}
	return l.Verify()
}

// Verify checks the tree without creating anything (the boot's directories
// step): a missing directory is an error (T005) naming every missing
// path; a wrong mode is corrected with a warning and returned as a Fix; a
// keys directory still accessible to group or others after the fix
// attempt is refused (T005), as is a keys directory that is a symlink or
// owned by another user.
func (l *Layout) Verify() ([]Fix, error) {
	var missing []string
	var fixes []Fix
	for _, d := range Tree() {
		p := l.Path(d.Rel)
		var st fs.FileInfo
		var err error
		if d.Rel == Keys {
			st, err = os.Lstat(p) // never follow a symlink for the keys
		} else {
			st, err = os.Stat(p)
		}
		if errors.Is(err, fs.ErrNotExist) {
			missing = append(missing, p)
			continue
		}
		if err != nil {
			return fixes, talos.E(talos.CodeDirPermissions, "layout.Verify", fmt.Sprintf("cannot stat %s", p), err)
		}
		if !st.IsDir() {
			return fixes, talos.Errorf(talos.CodeDirPermissions, "layout.Verify",
				"%s is not a directory (mode %s); it must be a real directory with mode %s", p, st.Mode().String(), modeString(d.Mode))
		}
		if uid, ok := ownerUID(st); ok && uid != os.Geteuid() {
			if d.Rel == Keys {
				return fixes, talos.Errorf(talos.CodeDirPermissions, "layout.Verify",
					"%s is owned by uid %d, not by this user (uid %d); fix: chown %d %s", p, uid, os.Geteuid(), os.Geteuid(), p)
			}
			l.log.Warn("directory owned by another user", "path", p, "uid", uid, "want_uid", os.Geteuid())
		}
		have := st.Mode() & modeMask
		if have == d.Mode {
			continue
		}
		l.log.Warn(fmt.Sprintf("%s has permissions %s, expected %s", p, modeString(have), modeString(d.Mode)),
			"path", p, "have", modeString(have), "want", modeString(d.Mode))
		if err := l.chmod(p, d.Mode); err != nil {
			l.log.Warn("cannot correct permissions", "path", p, "err", err)
		} else {
			l.log.Info("corrected permissions on "+p, "path", p, "mode", modeString(d.Mode))
			fixes = append(fixes, Fix{Path: p, Was: have, Now: d.Mode})
		}
		if d.Rel == Keys {
			again, err := os.Lstat(p)
			if err != nil {
				return fixes, talos.E(talos.CodeDirPermissions, "layout.Verify", fmt.Sprintf("cannot stat %s", p), err)
			}
			if m := again.Mode() & modeMask; m&0o077 != 0 {
				return fixes, talos.Errorf(talos.CodeDirPermissions, "layout.Verify",
					"%s holds keys but is still accessible to group or others (mode %s) after trying to fix it; refusing to start. Fix: chmod 700 %s (and check the file system supports modes)",
					p, modeString(m), p)
			}
		}
	}
	if len(missing) > 0 {
		return fixes, talos.Errorf(talos.CodeDirPermissions, "layout.Verify",
			"%d directories missing: %s; run `talos init` to create the tree", len(missing), strings.Join(missing, ", "))
	}
	return fixes, nil
}

const modeMask = fs.ModePerm | fs.ModeSticky | fs.ModeSetuid | fs.ModeSetgid

// modeString prints a mode in octal the way chmod takes it (1777, 0750).
func modeString(m fs.FileMode) string {
	n := uint32(m.Perm())
	if m&fs.ModeSticky != 0 {
		n |= 0o1000
	}
	if m&fs.ModeSetgid != 0 {
		n |= 0o2000
	}
	if m&fs.ModeSetuid != 0 {
		n |= 0o4000
	}
	return fmt.Sprintf("%04o", n)
}
