package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDreamRunNowAndStatus(t *testing.T) {
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
