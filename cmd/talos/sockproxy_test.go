package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/sockproxy/sockproxytest"
)

func TestSockproxyCmdServesAndAudits(t *testing.T) {
	dir, err := os.MkdirTemp("", "spcmd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)

	// A stand-in engine on a unix socket.
	engSock := filepath.Join(dir, "engine.sock")
	engLn, err := net.Listen("unix", engSock)
	if err != nil {
		t.Fatal(err)
	}
	eng := httptest.NewUnstartedServer(sockproxytest.NewEngine())
	eng.Listener = engLn
	eng.Start()
	defer eng.Close()

	sock := filepath.Join(dir, "proxy.sock")
	audit := filepath.Join(dir, "audit.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut testenv.LockedBuffer
	root := newRootCmd()
	root.SetArgs([]string{"sockproxy", "--upstream", "unix://" + engSock, "--listen", "unix://" + sock,
		"--profile", "maintenance", "--audit-log", audit})
	root.SetOut(&out)
	root.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("socket never appeared; stderr: %s", errOut.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	fi, _ := os.Stat(sock)
	if fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v; want 0660", fi.Mode().Perm())
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := hc.Get("http://docker/v1.41/_ping")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != "OK" {
		t.Fatalf("ping through the command: %d %q", resp.StatusCode, body)
	}
	resp, err = hc.Post("http://docker/v1.41/containers/create", "application/json",
		strings.NewReader(`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"Privileged":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 403 || !strings.Contains(string(body), "Privileged") {
		t.Fatalf("privileged create: %d %s", resp.StatusCode, body)
	}
	hc.CloseIdleConnections()

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("command returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("command did not stop on cancel")
	}
	a, err := os.ReadFile(audit)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(a), `"event":"sockproxy.deny"`) || !strings.Contains(string(a), `"tier":1`) {
		t.Fatalf("audit log lacks the denial: %s", a)
	}
	if afi, _ := os.Stat(audit); afi.Mode().Perm() != 0o600 {
		t.Fatalf("audit log mode %v", afi.Mode().Perm())
	}
	if !strings.Contains(out.String(), "profile maintenance") || !strings.Contains(out.String(), "denied 1") {
		t.Fatalf("stdout: %s", out.String())
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
}

func TestSockproxyCmdRejectsBadFlags(t *testing.T) {
	// --audit-log - so each case fails on its own flag, not on a missing home.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--profile", "root", "--listen", "tcp://127.0.0.1:0"}, "root"},
		{[]string{"--listen", "tcp://0.0.0.0:0"}, "0.0.0.0"},
		{[]string{"--upstream", "ftp://x", "--listen", "tcp://127.0.0.1:0"}, "ftp://x"},
		{[]string{"--allow-bind", "relative", "--listen", "tcp://127.0.0.1:0"}, "relative"},
	} {
		args := append([]string{"sockproxy", "--audit-log", "-"}, tc.args...)
		root := newRootCmd()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		err := root.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v; want exit code 2 naming %q", args, err, tc.want)
		}
	}
}

// fakeEngine serves a stand-in Docker engine on a unix socket in dir.
func fakeEngine(t *testing.T, dir string) string {
	t.Helper()
	engSock := filepath.Join(dir, "engine.sock")
	engLn, err := net.Listen("unix", engSock)
	if err != nil {
		t.Fatal(err)
	}
	eng := httptest.NewUnstartedServer(sockproxytest.NewEngine())
	eng.Listener = engLn
	eng.Start()
	t.Cleanup(eng.Close)
	return engSock
}

// startSockproxy runs `talos sockproxy args...` until stop, waiting for
// sock to appear; stop returns stdout.
func startSockproxy(t *testing.T, sock string, args ...string) (stop func() string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut testenv.LockedBuffer
	root := newRootCmd()
	root.SetArgs(append([]string{"sockproxy"}, args...))
	root.SetOut(&out)
	root.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("sockproxy exited early: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("socket never appeared; stderr: %s", errOut.String())
		}
		time.Sleep(2 * time.Millisecond)
	}
	var once sync.Once
	return func() string {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("sockproxy returned %v\n%s", err, errOut.String())
				}
			case <-time.After(10 * time.Second):
				t.Error("sockproxy did not stop on cancel")
			}
		})
		return out.String()
	}
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

// Without --audit-log, `talos sockproxy` writes its denials to the home's
// tier 1, in a hash chain of its own per profile, while `talos run` holds
// the one-writer lock of the daemon's chain: both chains verify with
// `talos logs verify`, and a second proxy of the same profile is refused
// with the way out (--audit-log).
func TestSockproxyCmdAuditsToTier1NextToDaemon(t *testing.T) {
	home := initHome(t)
	_, stopDaemon := startRun(t, home)

	dir, err := os.MkdirTemp("", "spcmd") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	engSock := fakeEngine(t, dir)
	sock := filepath.Join(dir, "proxy.sock")
	stop := startSockproxy(t, sock, "--home", home, "--upstream", "unix://"+engSock, "--listen", "unix://"+sock, "--profile", "skills")

	hc := unixClient(sock)
	for i, body := range []string{
		`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"Privileged":true}}`,
		`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"PidMode":"host"}}`,
	} {
		resp, err := hc.Post("http://docker/v1.41/containers/create", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 {
			t.Fatalf("create %d: %d, want 403", i, resp.StatusCode)
		}
	}
	hc.CloseIdleConnections()

	// A second proxy of the same profile cannot share the chain.
	root := newRootCmd()
	var errOut bytes.Buffer
	root.SetArgs([]string{"sockproxy", "--home", home, "--upstream", "unix://" + engSock, "--listen", "unix://" + filepath.Join(dir, "p2.sock"), "--profile", "skills"})
	root.SetOut(io.Discard)
	root.SetErr(&errOut)
	if err := root.Execute(); exitCode(err) != 2 || !strings.Contains(err.Error(), "already writes the audit chain") || !strings.Contains(err.Error(), "--audit-log") {
		t.Fatalf("second proxy on the same chain: exit %d, %v", exitCode(err), err)
	}

	out := stop()
	chain := filepath.Join(home, "logs", "tier1", "sockproxy", "skills")
	if !strings.Contains(out, "audit to tier-1 chain "+chain) || !strings.Contains(out, "denied 2") {
		t.Fatalf("sockproxy stdout:\n%s", out)
	}
	data, err := os.ReadFile(filepath.Join(chain, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], `{"seq":1,"prev":"`+strings.Repeat("0", 64)+`"`) ||
		!strings.Contains(lines[0], `"event":"sockproxy.deny"`) || !strings.Contains(lines[0], "Privileged") ||
		!strings.HasPrefix(lines[1], `{"seq":2,`) || !strings.Contains(lines[1], `"code":"T406"`) {
		t.Fatalf("tier-1 sockproxy chain:\n%s", data)
	}
	vout, _, err := talosCmd(context.Background(), "logs", "verify", "--home", home, "--dir", chain)
	if err != nil || !strings.Contains(vout, "OK") || !strings.Contains(vout, "2 lines") {
		t.Fatalf("talos logs verify --dir %s: %v\n%s", chain, err, vout)
	}

	// The daemon's own chain was not disturbed and still verifies.
	stopDaemon()
	if vout, _, err := talosCmd(context.Background(), "logs", "verify", "--home", home); err != nil ||
		!strings.Contains(vout, "OK tier-1 chain intact in "+chain+": 2 lines") {
		t.Fatalf("talos logs verify (daemon and sockproxy chains): %v\n%s", err, vout)
	}
	// Editing a sockproxy line is caught.
	tampered := strings.Replace(string(data), "Privileged", "privileged", 1)
	if err := os.WriteFile(filepath.Join(chain, "audit.log"), []byte(tampered), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, _, err := talosCmd(context.Background(), "logs", "verify", "--home", home, "--dir", chain); exitCode(err) != 1 {
		t.Fatalf("verify of an edited sockproxy chain: %v, want exit 1", err)
	}
	// ... also by the plain `talos logs verify`, which checks every chain.
	if vout, _, err := talosCmd(context.Background(), "logs", "verify", "--home", home); exitCode(err) != 1 || !strings.Contains(vout, "FAIL") {
		t.Fatalf("talos logs verify of a home with an edited sockproxy chain: %v, want exit 1\n%s", err, vout)
	}
}

// Without a Talos home (no `talos init`) and without --audit-log, the proxy
// refuses to start rather than drop its audit records; --audit-log - keeps
// the old stderr behaviour.
func TestSockproxyCmdAuditNeedsHomeOrFlag(t *testing.T) {
	empty := t.TempDir()
	root := newRootCmd()
	root.SetArgs([]string{"sockproxy", "--home", empty, "--listen", "tcp://127.0.0.1:0"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	err := root.Execute()
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "talos init") || !strings.Contains(err.Error(), "--audit-log") {
		t.Fatalf("no home: exit %d, %v", exitCode(err), err)
	}

	dir, err := os.MkdirTemp("", "spcmd")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	engSock := fakeEngine(t, dir)
	sock := filepath.Join(dir, "proxy.sock")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var errOut testenv.LockedBuffer
	root = newRootCmd()
	root.SetArgs([]string{"sockproxy", "--home", empty, "--upstream", "unix://" + engSock, "--listen", "unix://" + sock, "--audit-log", "-"})
	root.SetOut(io.Discard)
	root.SetErr(&errOut)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	waitFile(t, sock, 5*time.Second)
	hc := unixClient(sock)
	resp, err := hc.Post("http://docker/v1.41/containers/create", "application/json", strings.NewReader(`{"Image":"b","HostConfig":{"Privileged":true}}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	hc.CloseIdleConnections()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(errOut.String(), `"event":"sockproxy.deny"`) {
		t.Fatalf("--audit-log - did not write to stderr:\n%s", errOut.String())
	}
}
