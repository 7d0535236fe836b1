package dream

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"
)

// alerts records alerts.
type alerts struct {
	mu   sync.Mutex
	list []Alert
}

func (a *alerts) Alert(_ context.Context, al Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.list = append(a.list, al)
	return nil
}

func (a *alerts) of(k AlertKind) []Alert {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []Alert
	for _, al := range a.list {
		if al.Kind == k {
			out = append(out, al)
		}
	}
	return out
}

func newTest(t *testing.T, cfg Config, al Alerter) *Scheduler {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.Location == nil {
		cfg.Location = time.UTC
	}
	s, err := New(cfg, al)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// runs records when phases ran.
type runs struct {
	mu    sync.Mutex
	times map[string][]time.Time
}

func (r *runs) add(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.times == nil {
		r.times = map[string][]time.Time{}
	}
	r.times[name] = append(r.times[name], time.Now())
}

func (r *runs) get(name string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.times[name])
}

// phase returns a phase that records its runs and returns res, err.
func (r *runs) phase(name string, timeout time.Duration, res PhaseResult, err error) Phase {
	return Phase{Name: name, Timeout: timeout, Run: func(ctx context.Context) (PhaseResult, error) {
		r.add(name)
		return res, err
	}}
}

func mustRegister(t *testing.T, s *Scheduler, ps ...Phase) {
	t.Helper()
	for _, p := range ps {
		if err := s.Register(p); err != nil {
			t.Fatal(err)
		}
	}
}

func did(n int64) PhaseResult { return PhaseResult{Counters: map[string]int64{"items": n}} }

var errBoom = errors.New("boom")

// startRun runs s.Run in the background; the returned stop cancels it and
// waits for it to return.
func startRun(t *testing.T, s *Scheduler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run = %v", err)
		}
	}
}

func readCheckpoint(t *testing.T, s *Scheduler) *checkpoint {
	t.Helper()
	cp, err := s.loadCheckpoint()
	if err != nil {
		t.Fatal(err)
	}
	return cp
}

func files(t *testing.T, dir, glob string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
