package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/rag/chroma"
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

// With TALOS_CHROMA_URL set, `talos backup` exports the collection and
// `talos restore --partial=data` imports it again; on a home without
// Chroma the restore says the export was not imported and how to import
// it, and that command works.
func TestBackupRestoreChromaMemoriesFromTheCLI(t *testing.T) {
	url := testenv.ChromaURL(t)
	ctx := context.Background()
	home := askEnv(t, "TALOS_CHROMA_URL", url, "BASIC_AUTH_PASS", "Str0ng!Passw0rd#2026")
	coll := fmt.Sprintf("talos_cli_backup_%d", time.Now().UnixNano())
	t.Cleanup(func() { _ = chroma.DeleteCollection(context.Background(), url, coll) })
	for i := range 3 {
		if _, err := runMemoryArgs(t, "add", "--collection", coll, "--id", fmt.Sprint("b", i), fmt.Sprint("backup note ", i)); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		t.Helper()
		s, err := chroma.Open(ctx, chroma.Config{URL: url, Collection: coll})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		n, _ := s.Count(ctx)
		return n
	}
	wipe := func() {
		t.Helper()
		s, err := chroma.Open(ctx, chroma.Config{URL: url, Collection: coll})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		s.Delete(ctx, []string{"b0", "b1", "b2"})
	}
	archive := filepath.Join(t.TempDir(), "b.tar.gz")
	out, _, err := talosCmd(ctx, "backup", "-o", archive, "--collection", coll)
	if err != nil || !strings.Contains(out, "memories: 3 exported from Chroma at") {
		t.Fatalf("backup: %v\n%s", err, out)
	}
	wipe()
	out, _, err = talosCmd(ctx, "restore", archive, "--dry-run", "--partial=data", "--collection", coll)
	if err != nil || !strings.Contains(out, "3 memories exported from Chroma, to import into the collection "+coll) || count() != 0 {
		t.Fatalf("dry run: %v, %d in Chroma\n%s", err, count(), out)
	}
	out, _, err = talosCmd(ctx, "restore", archive, "--partial=data", "--yes", "--collection", coll)
	if err != nil || !strings.Contains(out, "memories: 3 imported into the Chroma collection "+coll) || count() != 3 {
		t.Fatalf("restore: %v, %d in Chroma\n%s", err, count(), out)
	}
	// The same archive on a home without Chroma.
	wipe()
	t.Setenv("TALOS_CHROMA_URL", "")
	out, _, err = talosCmd(ctx, "restore", archive, "--partial=data", "--yes", "--collection", coll)
	if err != nil || !strings.Contains(out, "3 exported from Chroma were NOT imported") || count() != 0 {
		t.Fatalf("restore without Chroma: %v\n%s", err, out)
	}
	hint := regexp.MustCompile("`talos (memory restore [^`]+)`").FindStringSubmatch(out)
	if hint == nil || !strings.Contains(hint[1], filepath.Join(home, "data", "chroma-export.jsonl")) {
		t.Fatalf("no import command in:\n%s", out)
	}
	t.Setenv("TALOS_CHROMA_URL", url)
	if out, err := runMemoryArgs(t, strings.Fields(hint[1])[1:]...); err != nil || count() != 3 {
		t.Fatalf("%s: %v, %d in Chroma\n%s", hint[1], err, count(), out)
	}
}
