package layout

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/talos-ironclad/talos"
)

func modeOf(t *testing.T, p string) fs.FileMode {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode() & modeMask
}

func TestCreateExactModesWhateverTheUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o077, 0o000, 0o777} {
		old := syscall.Umask(umask)
		home := filepath.Join(t.TempDir(), "talos")
		l, err := New(home, nil)
		if err != nil {
			t.Fatal(err)
		}
		fixes, err := l.Create()
		syscall.Umask(old)
		if err != nil {
			t.Fatalf("umask %o: %v", umask, err)
		}
		if len(fixes) != 0 {
			t.Errorf("umask %o: fresh tree needed fixes %v", umask, fixes)
		}
		for _, d := range Tree() {
			if got := modeOf(t, l.Path(d.Rel)); got != d.Mode {
				t.Errorf("umask %o: %s mode %s, want %s", umask, d.Rel, modeString(got), modeString(d.Mode))
			}
		}
		// Idempotent.
		if fixes, err := l.Create(); err != nil || len(fixes) != 0 {
			t.Errorf("second Create: %v %v", fixes, err)
		}
	}
	if got := modeString(0o777 | fs.ModeSticky); got != "1777" {
		t.Errorf("modeString = %s", got)
	}
}

func TestVerifyFixesWrongModesWithWarning(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	l, _ := New(t.TempDir(), log)
	if _, err := l.Create(); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	wrong := map[string]fs.FileMode{Keys: 0o755, LogsTier1: 0o777, Tmp: 0o755, SkillsQuarantine: 0o700}
	for rel, m := range wrong {
		if err := os.Chmod(l.Path(rel), m); err != nil {
			t.Fatal(err)
		}
	}
	fixes, err := l.Verify()
	if err != nil {
		t.Fatal(err)
	}
	if len(fixes) != len(wrong) {
		t.Fatalf("fixes = %v", fixes)
	}
	for _, f := range fixes {
		rel, _ := filepath.Rel(l.Home(), f.Path)
		if f.Was != wrong[rel] {
			t.Errorf("%s: Was %s, want %s", rel, modeString(f.Was), modeString(wrong[rel]))
		}
		if got := modeOf(t, f.Path); got != f.Now {
			t.Errorf("%s not corrected: %s", rel, modeString(got))
		}
	}
	logs := buf.String()
	if !strings.Contains(logs, `"level":"WARN"`) || !strings.Contains(logs, l.Path(Keys)+" has permissions 0755, expected 0700") {
		t.Errorf("no warning logged: %s", logs)
	}
	if !strings.Contains(logs, "corrected permissions on "+l.Path(Tmp)) {
		t.Errorf("no correction logged: %s", logs)
	}
	if !strings.Contains(fixes[0].String(), "expected") {
		t.Errorf("Fix.String = %s", fixes[0])
	}
}

func TestVerifyMissingIsFatal(t *testing.T) {
	l, _ := New(t.TempDir(), nil)
	if _, err := l.Create(); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{DataPostgres, LogsTier3} {
		if err := os.Remove(l.Path(rel)); err != nil {
			t.Fatal(err)
		}
	}
	_, err := l.Verify()
	if !errors.Is(err, talos.ErrDirPermissions) {
		t.Fatalf("want T005, got %v", err)
	}
	for _, rel := range []string{DataPostgres, LogsTier3} {
		if !strings.Contains(err.Error(), l.Path(rel)) {
			t.Errorf("%s not named in %v", rel, err)
		}
	}
	if !strings.Contains(err.Error(), "talos init") {
		t.Errorf("no fix in %v", err)
	}
	// A missing home is missing too.
	l2, _ := New(filepath.Join(t.TempDir(), "nope"), nil)
	if _, err := l2.Verify(); !errors.Is(err, talos.ErrDirPermissions) {
		t.Fatalf("missing home: %v", err)
	}
}

func TestKeysStillReadableIsRefused(t *testing.T) {
	l, _ := New(t.TempDir(), nil)
	if _, err := l.Create(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(l.Path(Keys), 0o755); err != nil {
		t.Fatal(err)
	}
	// A file system that ignores chmod (e.g. some FUSE or vfat mounts).
	l.chmod = func(p string, m fs.FileMode) error {
		if p == l.Path(Keys) {
			return nil
		}
		return os.Chmod(p, m)
	}
	_, err := l.Verify()
	if !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), "refusing to start") ||
		!strings.Contains(err.Error(), "chmod 700 "+l.Path(Keys)) {
		t.Fatalf("got %v", err)
	}
	// A failing chmod is refused the same way.
	l.chmod = func(string, fs.FileMode) error { return fs.ErrPermission }
	if _, err := l.Verify(); !errors.Is(err, talos.ErrDirPermissions) {
		t.Fatalf("got %v", err)
	}
}

func TestKeysSymlinkRefused(t *testing.T) {
	l, _ := New(t.TempDir(), nil)
	if _, err := l.Create(); err != nil {
		t.Fatal(err)
	}
	elsewhere := t.TempDir()
	os.Chmod(elsewhere, 0o700)
	if err := os.Remove(l.Path(Keys)); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, l.Path(Keys)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Verify(); !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("got %v", err)
	}
	if _, err := l.Create(); !errors.Is(err, talos.ErrDirPermissions) {
		t.Fatalf("Create accepted a symlinked keys dir: %v", err)
	}
}

func TestFileInPlaceOfDirectory(t *testing.T) {
	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, "skills"), 0o755)
	os.WriteFile(filepath.Join(home, "skills", "active"), []byte("x"), 0o644)
	l, _ := New(home, nil)
	if _, err := l.Create(); !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("got %v", err)
	}
}

func TestPaths(t *testing.T) {
	l, err := New("/srv/talos", nil)
	if err != nil {
		t.Fatal(err)
	}
	if l.LogDir(1) != "/srv/talos/logs/tier1" || l.Path(DataRedis) != "/srv/talos/data/redis" {
		t.Errorf("%s %s", l.LogDir(1), l.Path(DataRedis))
	}
	if _, err := New("", nil); !errors.Is(err, talos.ErrDirPermissions) {
		t.Errorf("empty home: %v", err)
	}
	if len(Tree()) != 17 {
		t.Errorf("tree has %d dirs", len(Tree()))
	}
}
