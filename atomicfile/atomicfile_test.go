package atomicfile

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestWriteFileReplacesWithModeAndLeavesNoTemp(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(p, []byte("new"), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, []byte("new")) {
		t.Fatalf("content = %q, %v", got, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600 (the new file's mode, not the old one's)", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the target (temporary file left behind?)", len(ents))
	}
}

func TestWriteFileFailureKeepsOldContent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A directory cannot be renamed over by a file: the write fails after
	// the temporary file was written, and nothing may change.
	sub := filepath.Join(dir, "target")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sub, "x"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	err := WriteFile(sub, []byte("new"), 0o600)
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Fatalf("err = %v, want an error naming %s", err, sub)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Fatalf("directory holds %d entries after a failed write, want 2 (temporary file left behind?)", len(ents))
	}
	if got, _ := os.ReadFile(p); string(got) != "old" {
		t.Fatalf("unrelated file changed: %q", got)
	}
	if err := WriteFile(filepath.Join(dir, "missing", "f"), nil, 0o600); err == nil || !strings.Contains(err.Error(), "writable") {
		t.Fatalf("missing directory: err = %v, want a hint", err)
	}
}

func ExampleWriteFile() {
	dir, _ := os.MkdirTemp("", "atomicfile")
	defer os.RemoveAll(dir)
	p := filepath.Join(dir, "lockdown.json")
	_ = WriteFile(p, []byte(`{"locked":true}`), 0o600)
	b, _ := os.ReadFile(p)
	st, _ := os.Stat(p)
	fmt.Println(string(b), st.Mode().Perm())
	// Output: {"locked":true} -rw-------
}
