package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBackupAndRestoreFromTheCLI(t *testing.T) {
	ctx := context.Background()
	home := initHome(t)
	if _, _, err := talosCmd(ctx, "skill", "add", writeSkill(t, filepath.Join(t.TempDir(), "s"), "1.0.0", "print(1)\n"), "--home", home); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	out, _, err := talosCmd(ctx, "backup", "-o", archive, "--home", home)
	if err != nil || !strings.Contains(out, "database sqlite") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	if st, _ := os.Stat(archive); st.Mode().Perm() != 0o600 {
		t.Errorf("archive mode %v", st.Mode().Perm())
	}
	if out, _, err := talosCmd(ctx, "restore", archive, "--verify-only"); err != nil || !strings.Contains(out, "verified") {
		t.Fatalf("verify-only: %v\n%s", err, out)
	}
	env := filepath.Join(home, "config", "talos.env")
	orig, _ := os.ReadFile(env)
	os.WriteFile(env, []byte("# wiped\n"), 0o600)
	// Anything but "yes" restores nothing.
	root := newRootCmd()
	root.SetArgs([]string{"restore", archive, "--home", home})
	root.SetIn(strings.NewReader("y\n"))
	var sink strings.Builder
	root.SetOut(&sink)
	if err := root.ExecuteContext(ctx); exitCode(err) != exitRestoreNo {
		t.Fatalf("answer y: %v", err)
	}
	if b, _ := os.ReadFile(env); string(b) != "# wiped\n" {
		t.Fatal("restored without a yes")
	}
	if out, _, err := talosCmd(ctx, "restore", archive, "--partial", "config", "--yes", "--home", home); err != nil || !strings.Contains(out, "restored") {
		t.Fatalf("restore: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(env); string(b) != string(orig) {
		t.Error("talos.env not restored")
	}
	if st, _ := os.Stat(env); st.Mode().Perm() != 0o600 {
		t.Errorf("talos.env mode %v", st.Mode().Perm())
	}
	os.WriteFile(archive, []byte("junk"), 0o600)
	if _, _, err := talosCmd(ctx, "restore", archive, "--verify-only"); exitCode(err) != exitBackupFailed {
		t.Errorf("junk archive: %v", err)
	}
}
