package boot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sampleReport() Report {
	t0 := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
	return Report{
		Started:  t0,
		Duration: 12 * time.Millisecond,
		Steps: []StepResult{
			{Name: "init", Outcome: OK, Duration: 2 * time.Millisecond},
			{Name: "redis", Outcome: Degraded, Duration: 10 * time.Millisecond, Detail: "PONG", Error: "policy differs"},
		},
		Degraded: true,
	}
}

func TestReadyRoundTripAndMode(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, ReadyFileName)
	r := NewReady(sampleReport(), "1.2.3", "127.0.0.1:8081")
	if r.Status != StatusDegraded || r.HealthURL != "http://127.0.0.1:8081/health" || r.PID != os.Getpid() || r.BootDurationMS != 12 {
		t.Fatalf("NewReady = %+v", r)
	}
	if err := WriteReady(path, r); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != ReadyFileMode {
		t.Fatalf("mode %o, want %o", st.Mode().Perm(), ReadyFileMode)
	}
	got, err := ReadReady(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != "1.2.3" || len(got.Steps) != 2 || got.Steps[1].Error != "policy differs" || got.Steps[1].DurationMS != 10 {
		t.Fatalf("read back %+v", got)
	}
	// Overwrite atomically; no temporary file is left behind.
	r.Status = StatusReady
	if err := WriteReady(path, r); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("directory holds %d entries, want only the marker", len(ents))
	}
	if err := RemoveReady(path); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("marker still there: %v", err)
	}
	if err := RemoveReady(path); err != nil {
		t.Fatalf("removing a missing marker: %v", err)
	}
}

func TestReadyStatuses(t *testing.T) {
	rep := sampleReport()
	rep.Degraded = false
	if s := NewReady(rep, "v", "").Status; s != StatusReady {
		t.Fatalf("status %s", s)
	}
	rep.FailedStep = "redis"
	r := NewReady(rep, "v", "")
	if r.Status != StatusFailed || r.FailedStep != "redis" || r.ExitCode != 1 || r.HealthURL != "" {
		t.Fatalf("failed marker %+v", r)
	}
}

func TestWriteReadyErrors(t *testing.T) {
	if err := WriteReady(filepath.Join(t.TempDir(), "missing", ReadyFileName), Ready{}); err == nil {
		t.Fatal("writing into a missing directory succeeded")
	}
	bad := filepath.Join(t.TempDir(), ReadyFileName)
	if err := os.WriteFile(bad, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadReady(bad); err == nil {
		t.Fatal("ReadReady accepted broken JSON")
	}
}

func FuzzReadReady(f *testing.F) {
	f.Add([]byte(`{"status":"ready","pid":1,"steps":[]}`))
	f.Add([]byte(`{"status":"failed","failed_step":"redis","exit_code":1}`))
	f.Add([]byte(`{`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), ReadyFileName)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := ReadReady(p)
		if err != nil {
			return
		}
		// Whatever parsed must survive a write and read back.
		if err := WriteReady(p, r); err != nil {
			t.Fatal(err)
		}
		if _, err := ReadReady(p); err != nil {
			t.Fatalf("re-read: %v", err)
		}
	})
}
