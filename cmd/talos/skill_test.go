package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/testenv"
)

func writeSkill(t *testing.T, dir, version, code string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	manifest := "id: hello_world\nversion: " + version + "\nlanguage: python\nentry: main.py\n"
	if err := os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.py"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestSkillLifecycleFromTheCLI(t *testing.T) {
	home := initHome(t)
	ctx := context.Background()
	src := writeSkill(t, filepath.Join(t.TempDir(), "hello"), "1.0.0", "print('hello')\n")

	out, _, err := talosCmd(ctx, "skill", "add", src, "--home", home)
	if err != nil || !strings.Contains(out, "hello_world@1.0.0#") || !strings.Contains(out, "is pending") {
		t.Fatalf("add: %v\n%s", err, out)
	}
	// Re-adding the same content changes nothing; one edited byte is a new record.
	if out2, _, err := talosCmd(ctx, "skill", "add", src, "--home", home); err != nil || out2 != out {
		t.Errorf("re-add: %v\n%s", err, out2)
	}
	if _, _, err := talosCmd(ctx, "skill", "add", src, "--source", "aliens", "--home", home); exitCode(err) != exitSkillBadArgs {
		t.Errorf("bad --source: exit %d", exitCode(err))
	}

	out, _, err = talosCmd(ctx, "skill", "scan", "hello_world", "--home", home)
	if err != nil || !strings.Contains(out, "scan passed") {
		t.Fatalf("scan: %v\n%s", err, out)
	}
	out, _, err = talosCmd(ctx, "skill", "show", "hello_world@1.0.0", "--home", home)
	if err != nil || !strings.Contains(out, "not eligible for promotion") || !strings.Contains(out, "scanned") {
		t.Fatalf("show: %v\n%s", err, out)
	}
	// Not eligible (no clean runs, too young): refused, and no code exists.
	_, _, err = talosCmd(ctx, "skill", "request-promotion", "hello_world", "--home", home)
	if exitCode(err) != exitSkillFailed {
		t.Errorf("request-promotion of an ineligible skill: %v", err)
	}
	if _, err := os.Stat(filepath.Join(home, "keys", "approval-code.txt")); err == nil {
		t.Error("an approval code was delivered for an ineligible skill")
	}

	// A second content of the same version must be named by its hash.
	src2 := writeSkill(t, filepath.Join(t.TempDir(), "hello2"), "1.0.0", "print('hello, world')\n")
	if _, _, err := talosCmd(ctx, "skill", "add", src2, "--home", home); err != nil {
		t.Fatal(err)
	}
	_, _, err = talosCmd(ctx, "skill", "show", "hello_world@1.0.0", "--home", home)
	if exitCode(err) != exitSkillBadArgs || !strings.Contains(err.Error(), "different content") {
		t.Errorf("ambiguous name: %v", err)
	}

	out, _, err = talosCmd(ctx, "skill", "list", "--json", "--home", home)
	var recs []map[string]any
	if err != nil || json.Unmarshal([]byte(out), &recs) != nil || len(recs) != 2 {
		t.Fatalf("list --json: %v\n%s", err, out)
	}
	out, _, err = talosCmd(ctx, "skill", "strikes", "hello_world@1.0.0#"+recs[0]["hash"].(string)[:12], "--home", home)
	if err != nil || !strings.Contains(out, "0 active strikes") {
		t.Errorf("strikes: %v\n%s", err, out)
	}
	if _, _, err := talosCmd(ctx, "skill", "reject", "hello_world@1.0.0#"+recs[0]["hash"].(string)[:12], "--home", home); exitCode(err) != exitSkillBadArgs {
		t.Errorf("reject without reason: %v", err)
	}
	out, _, err = talosCmd(ctx, "skill", "verify", "--home", home)
	if err != nil || !strings.Contains(out, "quarantine audit:") || !strings.Contains(out, " ok") {
		t.Errorf("verify: %v\n%s", err, out)
	}
	if _, _, err := talosCmd(ctx, "skill", "show", "nothing_here", "--home", home); exitCode(err) != exitSkillFailed {
		t.Errorf("unknown skill: %v", err)
	}
	// The unknown name is quoted once, escaped and clipped.
	long := "no\nsuch" + strings.Repeat("x", 500)
	if _, _, err := talosCmd(ctx, "skill", "show", long, "--home", home); err == nil ||
		!strings.Contains(err.Error(), `no skill record "no\nsuch`) || !strings.Contains(err.Error(), "… (507 bytes)") {
		t.Errorf("unknown long skill: %v", err)
	}
}

// On the harness's engine: a scanned skill runs clean and counts; a
// crashing one fails its record and earns an exception strike.
func TestSkillRunInTheSandbox(t *testing.T) {
	docker := testenv.DockerHost(t)
	image := testenv.PythonImage(t)
	home := initHome(t)
	ctx := context.Background()
	set := []string{"--home", home, "--set", "TALOS_DOCKER_HOST=" + docker, "--set", "SANDBOX_TIMEOUT=20"}
	good := writeSkill(t, filepath.Join(t.TempDir(), "good"), "1.0.0", "import sys\nprint('hello', *sys.argv[1:])\n")
	bad := writeSkill(t, filepath.Join(t.TempDir(), "bad"), "1.0.1", "raise ValueError('boom \\x1b[31m red')\n")
	for _, dir := range []string{good, bad} {
		if _, _, err := talosCmd(ctx, append([]string{"skill", "add", dir}, set...)...); err != nil {
			t.Fatal(err)
		}
	}
	for _, ref := range []string{"hello_world@1.0.0", "hello_world@1.0.1"} {
		if _, _, err := talosCmd(ctx, append([]string{"skill", "scan", ref}, set...)...); err != nil {
			t.Fatal(err)
		}
	}
	out, _, err := talosCmd(ctx, append(append([]string{"skill", "run", "hello_world@1.0.0", "--image", image}, set...), "--", "there")...)
	if err != nil || !strings.Contains(out, "hello there") || !strings.Contains(out, "clean run") || !strings.Contains(out, "1 clean runs") {
		t.Fatalf("good run: %v\n%s", err, out)
	}
	out, errOut, err := talosCmd(ctx, append([]string{"skill", "run", "hello_world@1.0.1", "--image", image}, set...)...)
	if exitCode(err) != exitSkillFailed || !strings.Contains(out, "strike #1 (unhandled_exception)") || !strings.Contains(out, "now failed") {
		t.Fatalf("bad run: %v\n%s\n%s", err, out, errOut)
	}
	if strings.Contains(errOut, "\x1b") {
		t.Error("the skill's escape sequence reached the terminal")
	}
	if _, _, err := talosCmd(ctx, "skill", "run", "hello_world@1.0.0", "--home", home, "--set", "TALOS_DOCKER_HOST="); exitCode(err) != exitSkillFailed || !strings.Contains(err.Error(), "TALOS_DOCKER_HOST") {
		t.Errorf("run without an engine: %v", err)
	}
}
