package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/layout"
)

// execTalos runs the CLI in-process and returns stdout and the error.
func execTalos(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestInitCreatesHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "talos")
	out, err := execTalos(t, "init", "--home", home)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "Next steps") || !strings.Contains(out, "talos run") {
		t.Errorf("no next steps: %s", out)
	}
	l, _ := layout.New(home, nil)
	if fixes, err := l.Verify(); err != nil || len(fixes) != 0 {
		t.Errorf("tree: %v %v", fixes, err)
	}
	st, err := os.Stat(filepath.Join(home, "config", "talos.env"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("talos.env: %v %v", st, err)
	}
	cfg, err := config.Load(config.LoadOptions{Home: home})
	if err != nil {
		t.Fatalf("init output does not validate: %v", err)
	}
	if strings.Contains(out, cfg.BasicAuthPass.Value()) {
		t.Error("init printed the generated password")
	}

	// A second init refuses and keeps the secrets.
	before, _ := os.ReadFile(filepath.Join(home, "config", "talos.env"))
	if _, err := execTalos(t, "init", "--home", home); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("second init: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(home, "config", "talos.env"))
	if !bytes.Equal(before, after) {
		t.Fatal("refused init changed talos.env")
	}
	if _, err := execTalos(t, "init", "--home", home, "--force"); err != nil {
		t.Fatal(err)
	}
	after, _ = os.ReadFile(filepath.Join(home, "config", "talos.env"))
	if bytes.Equal(before, after) {
		t.Fatal("--force did not regenerate secrets")
	}
}

func TestInitHonoursTalosHome(t *testing.T) {
	home := filepath.Join(t.TempDir(), "elsewhere")
	t.Setenv("TALOS_HOME", home)
	if _, err := execTalos(t, "init"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, "config", "config.yaml")); err != nil {
		t.Fatal(err)
	}
}
