package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
)

// noDefaultOllama points the look-up of a local model without
// TALOS_OLLAMA_URL at a port that refuses, until the test ends: the
// machine running the tests may serve Ollama on its default port.
func noDefaultOllama(t *testing.T) {
	old := host.DefaultOllamaURL
	host.DefaultOllamaURL = testenv.RefusingURL(t)
	t.Cleanup(func() { host.DefaultOllamaURL = old })
}

func TestDreamRunNowAndStatus(t *testing.T) {
	noDefaultOllama(t)
	home := initHome(t)
	out, _, err := talosCmd(context.Background(), "dream", "status", "--home", home)
	if err != nil || !strings.Contains(out, "next cycle") || !strings.Contains(out, "no cycle has run yet") {
		t.Fatalf("status before: %v\n%s", err, out)
	}
	if _, _, err := talosCmd(context.Background(), "dream", "run", "--home", home); exitCode(err) != 2 {
		t.Errorf("run without --now: exit %d (%v), want 2", exitCode(err), err)
	}
	// A rotated tier-3 log for the log_compress phase.
	rotated := filepath.Join(home, "logs", "tier3", "debug.000001.log")
	if err := os.WriteFile(rotated, []byte(strings.Repeat("line\n", 1000)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = talosCmd(context.Background(), "dream", "run", "--now", "--json", "--home", home)
	if err != nil {
		t.Fatalf("run --now: %v\n%s", err, out)
	}
	var rep struct {
		Outcome string
		Phases  []struct {
			Name, Status string
			Counters     map[string]int64
		}
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Outcome != "ok" || len(rep.Phases) != 10 || rep.Phases[4].Name != "log_compress" || rep.Phases[4].Counters["files_compressed"] != 1 || rep.Phases[3].Name != "session_summarize" || rep.Phases[3].Status != "skipped" {
		t.Errorf("report %+v", rep)
	}
	if _, err := os.Stat(rotated + ".gz"); err != nil {
		t.Errorf("rotated log not compressed: %v", err)
	}
	out, _, err = talosCmd(context.Background(), "dream", "status", "--home", home)
	if err != nil || !strings.Contains(out, "last cycle") || !strings.Contains(out, "log_compress") {
		t.Errorf("status after: %v\n%s", err, out)
	}
}

// With `talos run` up, `talos dream run --now` asks the daemon to run the
// cycle (on its open stores) and prints the report the daemon returns;
// --in-process runs it here instead.
func TestDreamRunNowGoesToTheRunningDaemon(t *testing.T) {
	noDefaultOllama(t)
	home := initHome(t)
	addr, stop := startRun(t, home)
	out, errOut, err := talosCmd(context.Background(), "dream", "run", "--now", "--json", "--home", home)
	if err != nil {
		t.Fatalf("run --now: %v\n%s\n%s", err, out, errOut)
	}
	if !strings.Contains(errOut, "the daemon at "+addr+" runs the cycle") {
		t.Errorf("stderr does not say the daemon ran the cycle:\n%s", errOut)
	}
	var rep struct {
		ID, Kind, Reason, Outcome string
		Phases                    []struct{ Name string }
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil || rep.Kind != "operator" || rep.Reason != "operator: talos dream run --now" || len(rep.Phases) != 10 {
		t.Fatalf("report %+v %v\n%s", rep, err, out)
	}
	// In-process, beside the daemon: a cycle of its own.
	out, errOut, err = talosCmd(context.Background(), "dream", "run", "--now", "--in-process", "--json", "--home", home)
	if err != nil || strings.Contains(errOut, "the daemon at") {
		t.Fatalf("--in-process: %v\n%s\n%s", err, out, errOut)
	}
	stop()
	// The daemon's own log has the cycle it ran.
	logs, _ := filepath.Glob(filepath.Join(home, "logs", "*", "*"))
	found := false
	for _, f := range logs {
		b, _ := os.ReadFile(f)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "dream cycle started") && strings.Contains(line, rep.ID) {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("no log of the daemon under %s/logs shows cycle %s starting", home, rep.ID)
	}
}

// A daemon without the dream endpoint (an older version still running)
// answers 404: the command says to restart it or to run the cycle here.
func TestDreamRunNowAgainstAnOlderDaemon(t *testing.T) {
	home := initHome(t)
	old := httptest.NewServer(http.NotFoundHandler())
	defer old.Close()
	marker := boot.Ready{Status: boot.StatusReady, PID: os.Getpid(), HealthAddr: strings.TrimPrefix(old.URL, "http://")}
	if err := boot.WriteReady(filepath.Join(home, boot.ReadyFileName), marker); err != nil {
		t.Fatal(err)
	}
	_, _, err := talosCmd(context.Background(), "dream", "run", "--now", "--home", home)
	if exitCode(err) != exitDreamFailed || !strings.Contains(err.Error(), "restart it, or run with --in-process") {
		t.Fatalf("exit %d: %v", exitCode(err), err)
	}
}
