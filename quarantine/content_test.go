package quarantine

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/talos-ironclad/talos"
)

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, body := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHashDirCanonicalEncoding(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"main.py": "print(1)\n", "a/b.txt": "xy", "skill.yaml": "id: abc\n"})
	c, err := HashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	// The documented encoding, spelled out by hand.
	h := sha256.New()
	h.Write([]byte("talos-skill-v1\x00"))
	h.Write([]byte("a/b.txt\x002\x00xy"))
	h.Write([]byte("main.py\x009\x00print(1)\n"))
	h.Write([]byte("skill.yaml\x008\x00id: abc\n"))
	if want := hex.EncodeToString(h.Sum(nil)); c.Hash != want {
		t.Fatalf("hash %s, want %s", c.Hash, want)
	}
	if c.Size != 19 || len(c.Files) != 3 || c.Files[0].Path != "a/b.txt" {
		t.Fatalf("content %+v", c)
	}
	// Modes, times and empty folders do not count; one byte does, and so
	// does a rename.
	os.Chmod(filepath.Join(dir, "main.py"), 0o600)
	os.Mkdir(filepath.Join(dir, "empty"), 0o755)
	if c2, _ := HashDir(dir); c2.Hash != c.Hash {
		t.Fatal("mode or empty folder changed the hash")
	}
	os.WriteFile(filepath.Join(dir, "main.py"), []byte("print(2)\n"), 0o600)
	if c3, _ := HashDir(dir); c3.Hash == c.Hash {
		t.Fatal("a changed byte kept the hash")
	}
	os.WriteFile(filepath.Join(dir, "main.py"), []byte("print(1)\n"), 0o600)
	os.Rename(filepath.Join(dir, "a/b.txt"), filepath.Join(dir, "a/c.txt"))
	if c4, _ := HashDir(dir); c4.Hash == c.Hash {
		t.Fatal("a renamed file kept the hash")
	}
}

func TestHashDirRefusesWhatIsNotPlainFiles(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "secret")
	os.WriteFile(outside, []byte("s"), 0o600)
	cases := map[string]func(dir string) error{
		"symlink out": func(dir string) error { return os.Symlink(outside, filepath.Join(dir, "link")) },
		"symlink in":  func(dir string) error { return os.Symlink("main.py", filepath.Join(dir, "link")) },
		"dir symlink": func(dir string) error { return os.Symlink("/etc", filepath.Join(dir, "etc")) },
		"fifo":        func(dir string) error { return syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o600) },
		"too big": func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "big"), make([]byte, MaxSkillBytes), 0o600)
		},
		"control name": func(dir string) error { return os.WriteFile(filepath.Join(dir, "a\nb"), nil, 0o600) },
		"too many files": func(dir string) error {
			for i := 0; i <= MaxSkillFiles; i++ {
				if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("f", i)), nil, 0o600); err != nil {
					return err
				}
			}
			return nil
		},
		"too many folders": func(dir string) error {
			for i := 0; i <= 4*MaxSkillFiles; i++ {
				if err := os.Mkdir(filepath.Join(dir, fmt.Sprint("d", i)), 0o700); err != nil {
					return err
				}
			}
			return nil
		},
	}
	for name, setup := range cases {
		dir := t.TempDir()
		writeTree(t, dir, map[string]string{"main.py": "print(1)\n"})
		if err := setup(dir); err != nil {
			t.Fatal(err)
		}
		_, err := HashDir(dir)
		if err == nil || !errors.Is(err, talos.ErrSkillSandbox) {
			t.Errorf("%s: err = %v, want a T302 refusal", name, err)
		}
	}
	// The folder itself given as a link.
	dir := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	os.Symlink(dir, link)
	if _, err := HashDir(link); err == nil || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("folder link: %v", err)
	}
	if _, err := HashDir(outside); err == nil {
		t.Error("a file accepted as a folder")
	}
}

func TestCopySkillIsCompleteOrAbsent(t *testing.T) {
	src := t.TempDir()
	writeTree(t, src, map[string]string{"main.py": "print(1)\n", "pkg/x.py": "x = 1\n"})
	want, _ := HashDir(src)
	dst := filepath.Join(t.TempDir(), "active", "abc-1.0.0")
	c, err := copySkill("test", src, dst, 0o755, 0o644)
	if err != nil || c.Hash != want.Hash {
		t.Fatalf("copy: %v %+v", err, c)
	}
	if got, _ := HashDir(dst); got.Hash != want.Hash {
		t.Fatal("the copy hashes differently")
	}
	if st, _ := os.Stat(filepath.Join(dst, "pkg/x.py")); st.Mode().Perm() != 0o644 {
		t.Fatalf("file mode %v", st.Mode())
	}
	// A refused source leaves nothing behind.
	os.Symlink("/etc/passwd", filepath.Join(src, "evil"))
	dst2 := filepath.Join(filepath.Dir(dst), "abc-2.0.0")
	if _, err := copySkill("test", src, dst2, 0o755, 0o644); err == nil {
		t.Fatal("copied a folder with a symlink")
	}
	entries, _ := os.ReadDir(filepath.Dir(dst))
	if len(entries) != 1 {
		t.Fatalf("left behind: %v", entries)
	}
}
