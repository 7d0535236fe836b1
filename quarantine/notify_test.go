package quarantine

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testNotice() Notice {
	return Notice{Key: Key{ID: "hello_world", Version: "1.0.0", Hash: strings.Repeat("ab", 32)}, Code: "042917",
		ExpiresAt: time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC), RequestedBy: "user:alice"}
}

func TestConsoleNotifier(t *testing.T) {
	var b bytes.Buffer
	c := &ConsoleNotifier{W: &b}
	if err := c.Notify(context.Background(), testNotice()); err != nil {
		t.Fatal(err)
	}
	want := "Talos: skill hello_world@1.0.0 (content abababababab) asks to be promoted, requested by user:alice. To approve it, enter code 042917 before 2026-03-02T12:00:00Z. If you did not expect this, reject it.\n"
	if b.String() != want {
		t.Fatalf("console got %q", b.String())
	}
}

func TestFileNotifierIsOwnerOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notices", "approval.txt")
	f := &FileNotifier{Path: path}
	for i := 0; i < 2; i++ {
		if err := f.Notify(context.Background(), testNotice()); err != nil {
			t.Fatal(err)
		}
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("folder mode %v", dst.Mode())
	}
	data, _ := os.ReadFile(path)
	if strings.Count(string(data), "042917") != 1 {
		t.Fatalf("file holds %q", data)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestSpeechNotifierWithAStandInProgram(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh")
	}
	dir := t.TempDir()
	// A stand-in for espeak-ng that writes its text where -w says.
	prog := filepath.Join(dir, "fake-espeak")
	os.WriteFile(prog, []byte("#!/bin/sh\n[ \"$1\" = -w ] || exit 2\nout=$2; shift 3\nprintf 'RIFF%s' \"$*\" > \"$out\"\n"), 0o700)
	s := &SpeechNotifier{Dir: filepath.Join(dir, "wav"), program: prog}
	if err := s.Notify(context.Background(), testNotice()); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "wav", "hello_world-1.0.0.wav")
	data, err := os.ReadFile(out)
	if err != nil || !strings.Contains(string(data), "0 4 2 9 1 7. Again: 0 4 2 9 1 7") {
		t.Fatalf("wav %q %v", data, err)
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != 0o600 {
		t.Fatalf("wav mode %v", st.Mode())
	}
	// A failing program is an error, and leaves nothing.
	os.WriteFile(prog, []byte("#!/bin/sh\necho broken >&2\nexit 1\n"), 0o700)
	os.Remove(out)
	if err := s.Notify(context.Background(), testNotice()); err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("failing program: %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "wav")); len(entries) != 0 {
		t.Fatalf("left %v", entries)
	}
}

func TestNewSpeechNotifierNeedsTheProgram(t *testing.T) {
	_, err := exec.LookPath(SpeechProgram)
	s, nerr := NewSpeechNotifier(t.TempDir())
	if (err == nil) != (nerr == nil) || (nerr == nil && s == nil) {
		t.Fatalf("LookPath %v, NewSpeechNotifier %v", err, nerr)
	}
	if nerr != nil && !strings.Contains(nerr.Error(), "not installed") {
		t.Fatalf("unclear error: %v", nerr)
	}
}

type failing struct{}

func (failing) Notify(context.Context, Notice) error { return errors.New("down") }
func (failing) Name() string                         { return "failing" }

func TestMultiNotifier(t *testing.T) {
	var b bytes.Buffer
	ok := MultiNotifier{failing{}, &ConsoleNotifier{W: &b}}
	if err := ok.Notify(context.Background(), testNotice()); err != nil || !strings.Contains(b.String(), "042917") {
		t.Fatalf("one of two delivered: %v", err)
	}
	if ok.Name() != "failing, console" {
		t.Fatalf("Name %q", ok.Name())
	}
	if err := (MultiNotifier{failing{}, failing{}}).Notify(context.Background(), testNotice()); err == nil || !strings.Contains(err.Error(), "failing: down") {
		t.Fatalf("none delivered: %v", err)
	}
	if err := (MultiNotifier{}).Notify(context.Background(), testNotice()); err == nil {
		t.Fatal("empty MultiNotifier succeeded")
	}
}
