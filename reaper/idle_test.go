package reaper_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc/proctest"
	"github.com/talos-ironclad/talos/reaper"
)

// startIdle runs an Idle on a fake process table inside the bubble.
func startIdle(t *testing.T, cfg reaper.IdleConfig, procs *proctest.Procs) (*reaper.Idle, *eventLog) {
	t.Helper()
	ev := &eventLog{}
	cfg.OnEvent = ev.add
	i, err := reaper.NewIdle(cfg, procs)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = i.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return i, ev
}

type eventLog struct {
	mu sync.Mutex
	ev []reaper.IdleEvent
}

func (l *eventLog) add(e reaper.IdleEvent) { l.mu.Lock(); l.ev = append(l.ev, e); l.mu.Unlock() }
func (l *eventLog) actions() []reaper.IdleAction {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []reaper.IdleAction
	for _, e := range l.ev {
		out = append(out, e.Action)
	}
	return out
}

func signals(p *proctest.Procs) []syscall.Signal {
	var out []syscall.Signal
	for _, s := range p.Sent() {
		out = append(out, s.Signal)
	}
	return out
}

// More than 300 s idle → SIGTERM; exactly
// 300 s is not reaped; one that ignores SIGTERM gets SIGKILL 10 s later.
func TestIdleTimeoutBoundaryAndKill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		procs := proctest.NewProcs()
		procs.Add(100, "chromium", 1, true) // ignores SIGTERM
		i, ev := startIdle(t, reaper.IdleConfig{}, procs)
		start := time.Now()
		if err := i.Watch(100, reaper.WatchOptions{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(reaper.DefaultIdleTimeout)
		synctest.Wait()
		if s := procs.Sent(); len(s) != 0 {
			t.Fatalf("signalled at exactly %v idle: %+v (must be strictly greater)", reaper.DefaultIdleTimeout, s)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		sent := procs.Sent()
		if len(sent) != 1 || sent[0].Signal != syscall.SIGTERM || sent[0].PID != 100 {
			t.Fatalf("after 300 s + 1 ns: %+v, want one SIGTERM to 100", sent)
		}
		if got := sent[0].At.Sub(start); got != reaper.DefaultIdleTimeout+time.Nanosecond {
			t.Errorf("SIGTERM at %v, want %v", got, reaper.DefaultIdleTimeout+time.Nanosecond)
		}
		// Activity no longer helps once SIGTERM went out.
		if i.Touch(100) {
			t.Error("Touch of a terminating process returned true")
		}
		time.Sleep(reaper.DefaultKillGrace - time.Nanosecond)
		synctest.Wait()
		if got := signals(procs); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM}) {
			t.Fatalf("before the 10 s grace ended: %v", got)
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		sent = procs.Sent()
		if got := signals(procs); !slices.Equal(got, []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL}) {
			t.Fatalf("after the grace: %v, want SIGTERM then SIGKILL", got)
		}
		if d := sent[1].At.Sub(sent[0].At); d != reaper.DefaultKillGrace {
			t.Errorf("SIGKILL %v after SIGTERM, want %v", d, reaper.DefaultKillGrace)
		}
		if procs.Alive(100) || len(i.Watched()) != 0 {
			t.Error("killed process still alive or still watched")
		}
		if got := ev.actions(); !slices.Equal(got, []reaper.IdleAction{reaper.IdleTerm, reaper.IdleKill}) {
			t.Errorf("events %v", got)
		}
	})
}

func TestIdleTouchPostponesAndSIGTERMSuffices(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		procs := proctest.NewProcs()
		procs.Add(200, "node", 1, false) // dies on SIGTERM
		i, ev := startIdle(t, reaper.IdleConfig{}, procs)
		if err := i.Watch(200, reaper.WatchOptions{Name: "browser", Group: true}); err != nil {
			t.Fatal(err)
		}
		for range 5 { // active every 200 s for 1000 s
			time.Sleep(200 * time.Second)
			if !i.Touch(200) {
				t.Fatal("Touch of a watched process returned false")
			}
		}
		synctest.Wait()
		if s := procs.Sent(); len(s) != 0 {
			t.Fatalf("an active process was signalled: %+v", s)
		}
		time.Sleep(reaper.DefaultIdleTimeout + time.Second + reaper.DefaultKillGrace*3)
		synctest.Wait()
		sent := procs.Sent()
		if len(sent) != 1 || sent[0].Signal != syscall.SIGTERM || !sent[0].Group {
			t.Fatalf("%+v, want one group SIGTERM and no SIGKILL (it died)", sent)
		}
		if got := ev.actions(); !slices.Equal(got, []reaper.IdleAction{reaper.IdleTerm, reaper.IdleGone}) {
			t.Errorf("events %v, want sigterm then gone", got)
		}
		if ev.ev[0].Name != "browser" {
			t.Errorf("event name %q", ev.ev[0].Name)
		}
	})
}

// A PID that now names another process (reuse), or a zombie, is never
// signalled.
func TestIdleNeverSignalsReusedPIDOrZombie(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		procs := proctest.NewProcs()
		procs.Add(300, "chromium", 1, false)
		procs.Add(301, "chromium", 1, false)
		i, ev := startIdle(t, reaper.IdleConfig{Timeout: time.Minute}, procs)
		for _, pid := range []int{300, 301} {
			if err := i.Watch(pid, reaper.WatchOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		procs.Add(300, "sshd", 1, false) // 300 exited and the PID was reused
		procs.SetZombie(301)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if s := procs.Sent(); len(s) != 0 {
			t.Fatalf("signalled %+v", s)
		}
		if got := ev.actions(); !slices.Equal(got, []reaper.IdleAction{reaper.IdleGone, reaper.IdleGone}) {
			t.Errorf("events %v", got)
		}
		if len(i.Watched()) != 0 {
			t.Errorf("still watched: %+v", i.Watched())
		}
	})
}

func TestIdleForgetAndWatchErrors(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		procs := proctest.NewProcs()
		procs.Add(400, "x", 1, false)
		procs.Add(401, "z", 1, false)
		procs.SetZombie(401)
		i, _ := startIdle(t, reaper.IdleConfig{Timeout: time.Second, KillGrace: time.Second}, procs)
		for _, pid := range []int{0, 1, -5, 999, 401} {
			if err := i.Watch(pid, reaper.WatchOptions{}); err == nil {
				t.Errorf("Watch(%d) succeeded", pid)
			}
		}
		if err := i.Watch(400, reaper.WatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if w := i.Watched(); len(w) != 1 || w[0].Name != "x" {
			t.Errorf("Watched = %+v, want pid 400 named after its comm", w)
		}
		if !i.Forget(400) || i.Forget(400) {
			t.Error("Forget should report true once")
		}
		if i.Touch(400) {
			t.Error("Touch of a forgotten pid returned true")
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if s := procs.Sent(); len(s) != 0 {
			t.Errorf("a forgotten process was signalled: %+v", s)
		}
	})
}

func TestNewIdleRejectsNegative(t *testing.T) {
	for _, cfg := range []reaper.IdleConfig{{Timeout: -1}, {KillGrace: -time.Second}} {
		if _, err := reaper.NewIdle(cfg, nil); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("NewIdle(%+v) = %v, want T010", cfg, err)
		}
	}
}
