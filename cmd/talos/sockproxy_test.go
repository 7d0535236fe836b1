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
)

// lockedBuffer is a bytes.Buffer safe for the command's goroutine and the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

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
	eng := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		_, _ = io.WriteString(w, "OK")
	}))
	eng.Listener = engLn
	eng.Start()
	defer eng.Close()

	sock := filepath.Join(dir, "proxy.sock")
	audit := filepath.Join(dir, "audit.jsonl")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut lockedBuffer
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
	for _, args := range [][]string{
		{"sockproxy", "--profile", "root", "--listen", "tcp://127.0.0.1:0"},
		{"sockproxy", "--listen", "tcp://0.0.0.0:0"},
		{"sockproxy", "--upstream", "ftp://x", "--listen", "tcp://127.0.0.1:0"},
		{"sockproxy", "--allow-bind", "relative", "--listen", "tcp://127.0.0.1:0"},
	} {
		root := newRootCmd()
		root.SetArgs(args)
		root.SetOut(io.Discard)
		root.SetErr(io.Discard)
		err := root.Execute()
		var ee *exitError
		if !errors.As(err, &ee) || ee.code != 2 {
			t.Errorf("%v: err %v; want exit code 2", args, err)
		}
	}
}
