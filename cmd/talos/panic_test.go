package main

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/lifecycle"
)

// A run whose marker is left from a crash reports the recovery; `talos
// panic` stops the daemon through its one shutdown, the reason reaches
// the audit log, and the clean stop removes the run marker.
func TestRecoveryReportAndPanic(t *testing.T) {
	home := initHome(t)
	if _, err := lifecycle.New(home).Begin(lifecycle.Run{PID: 4242, Started: time.Now().Add(-time.Hour)}); err != nil {
		t.Fatal(err) // a previous run that never ended
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		o, _, err := talosCmd(ctx, "run", "--home", home, "--health-addr", addr)
		done <- result{o, err}
	}()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 10*time.Second)

	if _, _, err := talosCmd(context.Background(), "panic", "--home", t.TempDir()); exitCode(err) != exitPanicNoDaemon {
		t.Errorf("panic without a daemon: %v", err)
	}
	out, _, err := talosCmd(context.Background(), "panic", "--reason", "test panic", "--home", home)
	if err != nil || !strings.Contains(out, "the daemon has stopped") {
		t.Fatalf("panic: %v\n%s", err, out)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("talos run did not return after the panic")
	}
	if r.err != nil || !strings.Contains(r.out, "recovering: the previous run (pid 4242") || !strings.Contains(r.out, "panic requested by user:") {
		t.Fatalf("run: %v\n%s", r.err, r.out)
	}
	if _, err := os.Stat(filepath.Join(home, lifecycle.Dir, "running.json")); err == nil {
		t.Error("the run marker survived a clean stop")
	}
	audit, _ := os.ReadFile(filepath.Join(home, "logs", "tier1", "audit.log"))
	for _, want := range []string{`"daemon_recovered"`, `"previous_pid":4242`, `"panic"`, `"reason":"test panic"`, `"daemon_stopped"`} {
		if !strings.Contains(string(audit), want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// Two daemons on one home: the second refuses to start with a clear error,
// and does not count as an unclean restart of the first.
func TestSecondDaemonOnOneHomeRefuses(t *testing.T) {
	home := initHome(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, _, err := talosCmd(ctx, "run", "--home", home, "--health-addr", freeAddr(t))
		done <- err
	}()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 10*time.Second)
	_, _, err := talosCmd(context.Background(), "run", "--home", home, "--health-addr", freeAddr(t))
	if exitCode(err) != exitRunBootFailed || !strings.Contains(err.Error(), "another `talos run`") {
		t.Errorf("second daemon: %v", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("first daemon: %v", err)
	}
	if rec, err := lifecycle.New(home).Begin(lifecycle.Run{PID: 1}); err != nil || rec.Unclean {
		t.Errorf("after a clean stop and a refused second start: %+v, %v", rec, err)
	}
}

// POST /api/v1/panic with the operator's credentials stops a running
// daemon through its one shutdown; without them it is refused.
func TestPanicOverTheAPI(t *testing.T) {
	home := initHome(t)
	addr := freeAddr(t)
	done := make(chan error, 1)
	go func() {
		_, _, err := talosCmd(context.Background(), "run", "--home", home, "--health-addr", addr)
		done <- err
	}()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 10*time.Second)
	post := func(auth bool) int {
		req, _ := http.NewRequest("POST", "http://"+addr+chatapi.PanicPath, strings.NewReader(`{"reason":"api test"}`))
		req.Header.Set("Content-Type", "application/json")
		if auth {
			req.SetBasicAuth("admin", envValue(t, home, "BASIC_AUTH_PASS"))
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post(false); c != http.StatusUnauthorized {
		t.Fatalf("without credentials: %d", c)
	}
	if c := post(true); c != http.StatusAccepted {
		t.Fatalf("panic: %d", c)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the daemon did not stop after POST /api/v1/panic")
	}
	audit, _ := os.ReadFile(filepath.Join(home, "logs", "tier1", "audit.log"))
	if !strings.Contains(string(audit), `"reason":"api test"`) || !strings.Contains(string(audit), `"operator:api"`) {
		t.Error("the panic is not in the audit log")
	}
}
