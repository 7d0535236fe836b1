package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	home := filepath.Join(t.TempDir(), "talos")
	if _, err := execTalos(t, "init", "--home", home); err != nil {
		t.Fatal(err)
	}
	out, err := execTalos(t, "config", "validate", "--home", home)
	if err != nil || !strings.Contains(out, "configuration OK") {
		t.Fatalf("fresh home: %s %v", out, err)
	}

	// A deliberately bad configuration: every problem, one per line, exit 2.
	yaml := "trust_level: 9\nweb_port: 80\nlog_levle: INFO\n"
	if err := os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	envPath := filepath.Join(home, "config", "talos.env")
	data, _ := os.ReadFile(envPath)
	os.WriteFile(envPath, append(data, []byte("STRIKE_THRESHOLD=0\n")...), 0o600)
	t.Setenv("SANDBOX_PIDS_LIMIT", "5000")

	out, err = execTalos(t, "config", "validate", "--home", home)
	if exitCode(err) != 2 {
		t.Fatalf("exit %d (%v), want 2", exitCode(err), err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := []string{"TRUST_LEVEL: ", "WEB_PORT: ", "log_levle: ", "STRIKE_THRESHOLD: ", "SANDBOX_PIDS_LIMIT: "}
	if len(lines) != len(want) {
		t.Fatalf("want %d lines, got:\n%s", len(want), out)
	}
	for _, w := range want {
		found := false
		for _, l := range lines {
			if strings.HasPrefix(l, w) {
				found = true
			}
		}
		if !found {
			t.Errorf("no line starting %q in:\n%s", w, out)
		}
	}
	if !strings.Contains(out, "[config.yaml:3]") || !strings.Contains(out, "did you mean log_level") {
		t.Errorf("unknown key without line: %s", out)
	}

	// A 0644 talos.env is refused with the fix.
	os.WriteFile(filepath.Join(home, "config", "config.yaml"), nil, 0o644)
	os.WriteFile(envPath, data, 0o600)
	os.Unsetenv("SANDBOX_PIDS_LIMIT")
	if err := os.Chmod(envPath, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = execTalos(t, "config", "validate", "--home", home)
	if exitCode(err) != 2 || !strings.Contains(out, "chmod 600 "+envPath) {
		t.Fatalf("0644 talos.env: exit %d\n%s", exitCode(err), out)
	}
	pass := ""
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "BASIC_AUTH_PASS="); ok {
			pass = v
		}
	}
	if pass == "" || strings.Contains(out, pass) || strings.Contains(err.Error(), pass) {
		t.Error("secret printed")
	}
}
