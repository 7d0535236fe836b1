package testenv

import (
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// probeVar is a service variable no harness sets, so the helper process
// controls whether it is present.
const probeVar = "TALOS_TEST_TESTENV_PROBE"

// TestHelperNeed is not a test of its own: TestNeedSkipsOrFails runs the
// test binary with TESTENV_HELPER=1 to watch Need from outside, where a
// skip and a failure are visible as the process's output and exit code.
func TestHelperNeed(t *testing.T) {
	if os.Getenv("TESTENV_HELPER") != "1" {
		return // only the helper process runs it (no skip: CI counts skips)
	}
	v := Need(t, probeVar)
	t.Logf("got %s", v)
}

func TestNeedSkipsOrFails(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      []string
		wantExit bool // a non-zero exit (the test failed)
		want     string
	}{
		{"absent skips", nil, false, "--- SKIP: TestHelperNeed"},
		{"absent with require=0 skips", []string{EnvRequireAll + "=0"}, false, "--- SKIP: TestHelperNeed"},
		{"absent with require=1 fails", []string{EnvRequireAll + "=1"}, true, "--- FAIL: TestHelperNeed"},
		{"present passes", []string{probeVar + "=redis://x", EnvRequireAll + "=1"}, false, "got redis://x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperNeed$", "-test.v", "-test.count=1")
			cmd.Env = append(withoutVars(os.Environ(), probeVar, EnvRequireAll), append([]string{"TESTENV_HELPER=1"}, tc.env...)...)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.wantExit || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit error %v (want failure: %v), want %q in:\n%s", err, tc.wantExit, tc.want, out)
			}
			if tc.wantExit && !strings.Contains(string(out), EnvRequireAll+"=1 forbids skipping") {
				t.Errorf("the failure does not say why:\n%s", out)
			}
		})
	}
}

func withoutVars(env []string, names ...string) []string {
	out := env[:0:0]
	for _, kv := range env {
		drop := false
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				drop = true
			}
		}
		if !drop {
			out = append(out, kv)
		}
	}
	return out
}

// TestPIDNamespaceSkipsOrFails pins that PIDNamespace, like Need, skips a
// test where unshare cannot work and fails it under
// TALOS_TEST_REQUIRE_SERVICES=1.
func TestPIDNamespaceSkipsOrFails(t *testing.T) {
	if os.Getenv("TESTENV_PIDNS_CHILD") == "1" {
		PIDNamespace(t)
		return
	}
	for _, required := range []string{"0", "1"} {
		cmd := exec.Command(os.Args[0], "-test.run", "^TestPIDNamespaceSkipsOrFails$", "-test.v")
		// An empty PATH: no unshare can be found.
		cmd.Env = append(withoutVars(os.Environ(), "PATH", EnvRequireAll), "PATH=", "TESTENV_PIDNS_CHILD=1", EnvRequireAll+"="+required)
		out, err := cmd.CombinedOutput()
		switch required {
		case "0":
			if err != nil || !strings.Contains(string(out), "SKIP") || !strings.Contains(string(out), "unshare(1) is not installed") {
				t.Errorf("not required: want a skip naming unshare, got %v:\n%s", err, out)
			}
		case "1":
			if err == nil || !strings.Contains(string(out), "forbids skipping") {
				t.Errorf("required: want a failure, got %v:\n%s", err, out)
			}
		}
	}
}

func TestRefusingURLRefuses(t *testing.T) {
	u := RefusingURL(t)
	addr := strings.TrimPrefix(u, "http://")
	if addr == u {
		t.Fatalf("%q is not an http URL", u)
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("something answers at %s", addr)
	}
}

func TestAwayFromUTCMidnight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at midnight UTC, 2000-01-01.
		start := time.Now()
		AwayFromUTCMidnight(t, time.Minute)
		if waited := time.Since(start); waited != 0 {
			t.Errorf("at 00:00:00 it waited %v", waited)
		}
		time.Sleep(24*time.Hour - 30*time.Second)
		day := time.Now().UTC().Day()
		AwayFromUTCMidnight(t, time.Minute)
		if now := time.Now().UTC(); now.Day() == day || now.Hour() != 0 || now.Minute() != 0 {
			t.Errorf("30 s before midnight with a minute asked: returned at %v", now)
		}
		time.Sleep(23 * time.Hour)
		start = time.Now()
		AwayFromUTCMidnight(t, time.Minute)
		if waited := time.Since(start); waited != 0 {
			t.Errorf("an hour before midnight it waited %v", waited)
		}
	})
}
