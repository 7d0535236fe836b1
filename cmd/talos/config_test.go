package main

import (
	"net"
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

// TestSetFlagPrecedence checks flags > env > talos.env > config.yaml >
// defaults through the CLI: each layer is given a value, one of them out of
// range, and the exit code and the problem's source show which one won.
func TestSetFlagPrecedence(t *testing.T) {
	home := filepath.Join(t.TempDir(), "talos")
	if _, err := execTalos(t, "init", "--home", home); err != nil {
		t.Fatal(err)
	}
	yamlPath := filepath.Join(home, "config", "config.yaml")
	envPath := filepath.Join(home, "config", "talos.env")
	envData, err := os.ReadFile(envPath)
	if err != nil {
		t.Fatal(err)
	}
	setLayers := func(yaml, envFile string) {
		t.Helper()
		if err := os.WriteFile(yamlPath, []byte(yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(envPath, append(append([]byte{}, envData...), envFile...), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	validate := func(args ...string) (string, error) {
		t.Helper()
		return execTalos(t, append([]string{"config", "validate", "--home", home}, args...)...)
	}
	wantOK := func(what string, out string, err error) {
		t.Helper()
		if err != nil || !strings.Contains(out, "configuration OK") {
			t.Errorf("%s: want OK, got exit %d: %v\n%s", what, exitCode(err), err, out)
		}
	}
	wantBad := func(what, source string, out string, err error) {
		t.Helper()
		if exitCode(err) != 2 || !strings.Contains(out, "TRUST_LEVEL: ") || !strings.Contains(out, "["+source) {
			t.Errorf("%s: want exit 2 naming TRUST_LEVEL from %s, got exit %d: %v\n%s", what, source, exitCode(err), err, out)
		}
	}

	// config.yaml alone: its bad value is reported.
	setLayers("trust_level: 9\n", "")
	out, err := validate()
	wantBad("yaml", "config.yaml:1", out, err)
	// talos.env beats config.yaml.
	setLayers("trust_level: 2\n", "TRUST_LEVEL=9\n")
	out, err = validate()
	wantBad("talos.env over yaml", "talos.env:", out, err)
	setLayers("trust_level: 9\n", "TRUST_LEVEL=2\n")
	out, err = validate()
	wantOK("talos.env over yaml", out, err)
	// The environment beats talos.env.
	t.Setenv("TRUST_LEVEL", "9")
	out, err = validate()
	wantBad("env over talos.env", "env", out, err)
	// --set beats the environment (and lower-case config.yaml spelling works).
	out, err = validate("--set", "TRUST_LEVEL=2")
	wantOK("--set over env", out, err)
	out, err = validate("--set", "trust_level=3")
	wantOK("--set lower case", out, err)
	t.Setenv("TRUST_LEVEL", "2")
	out, err = validate("--set", "TRUST_LEVEL=9")
	wantBad("--set over env", "flag", out, err)
	// Repeatable, last one wins, and a value may hold '=' and ','.
	out, err = validate("--set", "TRUST_LEVEL=9", "--set", "TRUST_LEVEL=1", "--set", "TALOS_VRAM_MODELS=a=1,b=2")
	wantOK("repeated --set", out, err)
	setLayers("", "")

	// An unknown name: a clear error, a suggestion, where to find the names.
	out, err = validate("--set", "TRUST_LEVL=1")
	if err == nil || !strings.Contains(err.Error(), "TRUST_LEVL is not a configuration variable") ||
		!strings.Contains(err.Error(), "did you mean TRUST_LEVEL") || !strings.Contains(err.Error(), "talos config vars") {
		t.Errorf("unknown --set name: %v\n%s", err, out)
	}
	// Several bad --set flags are all reported, not only the first.
	_, err = validate("--set", "TRUST_LEVL=1", "--set", "nopair", "--set", "LOG_LEVL=DEBUG", "--set", "TALOS_HOME=/x")
	for _, want := range []string{"TRUST_LEVL is not", "--set number 2 is not NAME=VALUE", "LOG_LEVL is not", "--set TALOS_HOME"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("several bad --set: %q missing from %v", want, err)
		}
	}
	// A huge name is clipped and its control characters escaped.
	_, err = validate("--set", strings.Repeat("\x1b", 1<<16)+"=1")
	if err == nil || len(err.Error()) > 1000 || strings.Contains(err.Error(), "\x1b") {
		t.Errorf("huge --set name echoed (%d bytes)", len(err.Error()))
	}
	// Secrets given with --set are validated and never printed.
	const weak = "weakpassWORDxyz"
	out, err = validate("--set", "BASIC_AUTH_PASS="+weak)
	if exitCode(err) != 2 || !strings.Contains(out, "BASIC_AUTH_PASS: ") {
		t.Errorf("weak --set password accepted: exit %d\n%s", exitCode(err), out)
	}
	if strings.Contains(out, weak) || (err != nil && strings.Contains(err.Error(), weak)) {
		t.Errorf("secret printed:\n%s\n%v", out, err)
	}
	// A malformed pair does not echo its text (it may be a bare secret).
	out, err = validate("--set", "hunter2hunter2")
	if err == nil || strings.Contains(err.Error(), "hunter2") || strings.Contains(out, "hunter2") || !strings.Contains(err.Error(), "NAME=VALUE") {
		t.Errorf("malformed --set: %v\n%s", err, out)
	}

	// Other commands that load the configuration take --set too.
	out, err = execTalos(t, "run", "--home", home, "--set", "TRUST_LEVEL=7")
	if exitCode(err) != exitRunConfigFailed || !strings.Contains(err.Error(), "TRUST_LEVEL") {
		t.Errorf("run --set TRUST_LEVEL=7: exit %d: %v\n%s", exitCode(err), err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	out, err = execTalos(t, "health", "--home", home, "--set", "TALOS_HEALTH_ADDR="+addr, "--timeout", "2s")
	if err == nil || !strings.Contains(err.Error()+out, addr) {
		t.Errorf("health --set TALOS_HEALTH_ADDR=%s did not ask %s: %v\n%s", addr, addr, err, out)
	}
}

func TestConfigVars(t *testing.T) {
	out, err := execTalos(t, "config", "vars")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"TRUST_LEVEL", "0-5 (integer)", "TALOS_REDIS_URL"} {
		if !strings.Contains(out, want) {
			t.Errorf("config vars lacks %q", want)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "BASIC_AUTH_PASS") && !strings.Contains(l, "(secret)") {
			t.Errorf("secret not marked: %s", l)
		}
	}
}
