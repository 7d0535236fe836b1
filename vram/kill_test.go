package vram

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc"
	"github.com/talos-ironclad/talos/proc/proctest"
)

// recorder wraps Processes and records every signal sent.
type recorder struct {
	Processes
	mu   sync.Mutex
	sent []syscall.Signal
}

func (r *recorder) Signal(pid int, sig syscall.Signal) error {
	err := r.Processes.Signal(pid, sig)
	if err == nil {
		r.mu.Lock()
		r.sent = append(r.sent, sig)
		r.mu.Unlock()
	}
	return err
}

func (r *recorder) signals() []syscall.Signal {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.sent)
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func TestRealRunnerIgnoringSIGTERMIsKilled(t *testing.T) {
	pid := proctest.Start(t, true)
	rec := &recorder{Processes: proc.OS()}
	l := ladder{procs: rec, grace: 200 * time.Millisecond, verify: 2 * time.Second, poll: 10 * time.Millisecond, log: testLogger(t), self: os.Getpid()}
	start := time.Now()
	rep, err := l.kill(pid, "coder")
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("SIGKILL after %v, before the 200 ms grace", d)
	}
	if got := rec.signals(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
		t.Fatalf("signals %v, want SIGTERM, SIGKILL", got)
	}
	if rep.Method != KillSIGKILL || !rep.Verified || !rep.ZombieDetected || !rep.Reaped {
		t.Fatalf("report %+v, want SIGKILL, verified, zombie reaped (it is our child)", rep)
	}
	if info, err := proc.OS().Stat(pid); !errors.Is(err, proc.ErrGone) {
		t.Fatalf("after the ladder /proc says %+v (%v), want gone (not a zombie)", info, err)
	}
}

func TestRealRunnerExitingOnSIGTERMGetsNoSIGKILL(t *testing.T) {
	pid := proctest.Start(t, false)
	rec := &recorder{Processes: proc.OS()}
	l := ladder{procs: rec, grace: 5 * time.Second, verify: 2 * time.Second, poll: 10 * time.Millisecond, log: testLogger(t), self: os.Getpid()}
	rep, err := l.kill(pid, "coder")
	if err != nil {
		t.Fatalf("kill: %v", err)
	}
	if got := rec.signals(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
		t.Fatalf("signals %v, want only SIGTERM", got)
	}
	if rep.Method != KillSIGTERM || !rep.Verified || !rep.Reaped {
		t.Fatalf("report %+v, want SIGTERM, verified and reaped", rep)
	}
	if rep.Duration > 2*time.Second {
		t.Fatalf("took %v; the runner exits at once on SIGTERM", rep.Duration)
	}
}

// procRuntime is a runtime whose models live in real helper processes: a
// model is resident while its process is alive, and Unload hangs.
type procRuntime struct {
	t    *testing.T
	mu   sync.Mutex
	pids map[string]int
}

func (r *procRuntime) Load(ctx context.Context, model string) error {
	pid := proctest.Start(r.t, true)
	r.mu.Lock()
	r.pids[model] = pid
	r.mu.Unlock()
	return nil
}

func (r *procRuntime) Unload(ctx context.Context, model string) error { <-ctx.Done(); return ctx.Err() }

func (r *procRuntime) Resident(ctx context.Context) ([]string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for model, pid := range r.pids {
		if info, err := proc.OS().Stat(pid); err == nil && !info.Zombie() && !info.Dead() {
			out = append(out, model)
		}
	}
	slices.Sort(out)
	return out, nil
}

func (r *procRuntime) RunnerPID(ctx context.Context, model string) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if pid, ok := r.pids[model]; ok {
		return pid, nil
	}
	return 0, errors.New("no runner")
}

type staticGPU struct{}

func (staticGPU) Memory(context.Context) (Reading, error) {
	return Reading{Used: GiB, Total: 24 * GiB, Source: "static", At: time.Now()}, nil
}

// The whole mutex with a real runner that ignores SIGTERM: the ladder kills
// it and the mutex loads again after the cooldown.
func TestRealRunnerMutexRecoversAfterCooldown(t *testing.T) {
	rt := &procRuntime{t: t, pids: map[string]int{}}
	rec := &recorder{Processes: proc.OS()}
	cfg := Config{
		Models:         map[string]Model{"coder": {MinFree: 7 * GiB, Size: 5 * GiB}, "vision": {MinFree: 9 * GiB, Size: 7 * GiB}},
		AcquireTimeout: 10 * time.Second,
		UnloadHang:     100 * time.Millisecond,
		KillGrace:      200 * time.Millisecond,
		KillVerify:     2 * time.Second,
		Cooldown:       300 * time.Millisecond,
		PollInterval:   10 * time.Millisecond,
		Logger:         testLogger(t),
	}
	m, err := New(cfg, rt, staticGPU{}, rt, rec)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	l, err := m.Acquire(context.Background(), "coder")
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
	coderPID, _ := rt.RunnerPID(context.Background(), "coder")

	_, err = m.Acquire(context.Background(), "vision")
	if !errors.Is(err, talos.ErrUnloadHang) {
		t.Fatalf("swap with a hung unload: %v, want T105", err)
	}
	if got := rec.signals(); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
		t.Fatalf("signals %v, want SIGTERM then SIGKILL", got)
	}
	s := m.Stats()
	if s.State != Idle || s.LastKill.PID != coderPID || s.LastKill.Method != KillSIGKILL || s.CooldownUntil.IsZero() {
		t.Fatalf("after the kill: %+v %+v", s, s.LastKill)
	}
	cooldownEnd := s.CooldownUntil
	l, err = m.Acquire(context.Background(), "vision")
	if err != nil {
		t.Fatalf("Acquire after the cooldown: %v", err)
	}
	l.Release()
	if time.Now().Before(cooldownEnd) {
		t.Fatalf("vision loaded before the cooldown ended")
	}
	if s := m.Stats(); s.State != Ready || s.Model != "vision" || len(s.LastKill.Diagnostics) != 0 {
		t.Fatalf("after recovery: %+v diagnostics %+v", s, s.LastKill.Diagnostics)
	}
}

// stubProcs is a scripted Processes for the ladder's edge cases.
type stubProcs struct {
	info      proc.Stat
	signalErr error
	reap      bool
	sent      []syscall.Signal
}

func (s *stubProcs) Signal(pid int, sig syscall.Signal) error {
	if s.signalErr != nil {
		return s.signalErr
	}
	s.sent = append(s.sent, sig)
	return nil
}
func (s *stubProcs) Stat(pid int) (proc.Stat, error) { return s.info, nil }
func (s *stubProcs) Reap(pid int) (bool, error)      { return s.reap, nil }

func TestLadderEdgeCases(t *testing.T) {
	quiet := slog.New(slog.DiscardHandler)
	synctest.Test(t, func(t *testing.T) {
		// ALREADY_TERMINATED: the PID is gone before SIGTERM.
		s := &stubProcs{info: proc.Stat{PID: 7, State: 'X'}}
		rep, err := ladder{procs: s, grace: 10 * time.Second, verify: time.Second, poll: 100 * time.Millisecond, log: quiet}.kill(7, "coder")
		if err != nil || rep.Method != KillAlreadyTerminated || len(s.sent) != 0 {
			t.Fatalf("gone pid: %+v %v, sent %v", rep, err, s.sent)
		}
		// ESRCH on SIGTERM also counts as already terminated.
		s = &stubProcs{info: proc.Stat{PID: 7, State: 'S', StartTime: 5}, signalErr: syscall.ESRCH}
		rep, err = ladder{procs: s, grace: 10 * time.Second, verify: time.Second, poll: 100 * time.Millisecond, log: quiet}.kill(7, "coder")
		if err != nil || rep.Method != KillAlreadyTerminated {
			t.Fatalf("ESRCH: %+v %v", rep, err)
		}
		// EPERM: we may not signal it: FAILED with T106, at once.
		s = &stubProcs{info: proc.Stat{PID: 7, State: 'S'}, signalErr: syscall.EPERM}
		start := time.Now()
		rep, err = ladder{procs: s, grace: 10 * time.Second, verify: time.Second, poll: 100 * time.Millisecond, log: quiet}.kill(7, "coder")
		if !errors.Is(err, talos.ErrProcessKillFailed) || rep.Method != KillFailed || time.Since(start) != 0 {
			t.Fatalf("EPERM: %+v %v", rep, err)
		}
		// A zombie that is not our child: terminated, detected, not reaped.
		s = &stubProcs{info: proc.Stat{PID: 7, State: 'Z', PPID: 1}}
		rep, err = ladder{procs: s, grace: 10 * time.Second, verify: time.Second, poll: 100 * time.Millisecond, log: quiet}.kill(7, "coder")
		if err != nil || rep.Method != KillAlreadyTerminated || !rep.ZombieDetected || rep.Reaped {
			t.Fatalf("foreign zombie: %+v %v", rep, err)
		}
		// Unkillable (state D forever): SIGTERM, 10 s, SIGKILL, 2.5 s, FAILED.
		s = &stubProcs{info: proc.Stat{PID: 7, State: 'D', StartTime: 5}}
		start = time.Now()
		rep, err = ladder{procs: s, grace: DefaultKillGrace, verify: DefaultKillVerify, poll: DefaultPollInterval, log: quiet}.kill(7, "coder")
		if !errors.Is(err, talos.ErrProcessKillFailed) || rep.Method != KillFailed {
			t.Fatalf("unkillable: %+v %v", rep, err)
		}
		if d := time.Since(start); d != DefaultKillGrace+DefaultKillVerify {
			t.Fatalf("unkillable gave up after %v, want %v", d, DefaultKillGrace+DefaultKillVerify)
		}
		if !slices.Equal(s.sent, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
			t.Fatalf("unkillable: sent %v", s.sent)
		}
	})
}

func TestLadderDetectsPIDReuse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := &reuseProcs{}
		rep, err := ladder{procs: s, grace: 10 * time.Second, verify: time.Second, poll: 100 * time.Millisecond, log: slog.New(slog.DiscardHandler)}.kill(7, "coder")
		if err != nil || rep.Method != KillSIGTERM {
			t.Fatalf("%+v %v", rep, err)
		}
	})
}

// reuseProcs: after SIGTERM the PID belongs to a new process (other start time).
type reuseProcs struct{ termed bool }

func (r *reuseProcs) Signal(pid int, sig syscall.Signal) error { r.termed = true; return nil }
func (r *reuseProcs) Reap(int) (bool, error)                   { return false, nil }
func (r *reuseProcs) Stat(pid int) (proc.Stat, error) {
	if r.termed {
		return proc.Stat{PID: pid, State: 'S', StartTime: 99}, nil
	}
	return proc.Stat{PID: pid, State: 'S', StartTime: 5}, nil
}
