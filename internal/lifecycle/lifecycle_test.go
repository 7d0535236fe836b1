package lifecycle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/lifecycle"
)

func TestWatchdogWarnsThenActsExactlyOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var warns, acts atomic.Int32
		var actLate atomic.Int64
		w := &lifecycle.Watchdog{OnWarn: func(time.Duration) { warns.Add(1) }, OnStall: func(d time.Duration) { acts.Add(1); actLate.Store(int64(d)) }}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := make(chan struct{})
		go func() { w.Run(ctx); close(done) }()
		// A healthy loop: beats every second for a minute, no warning.
		for i := 0; i < 60; i++ {
			time.Sleep(time.Second)
			w.Beat()
		}
		synctest.Wait()
		if warns.Load() != 0 || acts.Load() != 0 {
			t.Fatalf("healthy: %d warnings, %d acts", warns.Load(), acts.Load())
		}
		// A 7 s stall warns once, then beats resume.
		time.Sleep(7 * time.Second)
		synctest.Wait()
		if warns.Load() != 1 || acts.Load() != 0 {
			t.Fatalf("7 s stall: %d warnings, %d acts", warns.Load(), acts.Load())
		}
		w.Beat()
		// A long stall: acts at 30 s, once, and the watchdog stops.
		time.Sleep(29 * time.Second)
		synctest.Wait()
		if acts.Load() != 0 {
			t.Fatal("acted before 30 s")
		}
		time.Sleep(2 * time.Second)
		<-done
		if acts.Load() != 1 || !w.Acted() || time.Duration(actLate.Load()) < 30*time.Second {
			t.Fatalf("after 31 s: %d acts (late %v)", acts.Load(), time.Duration(actLate.Load()))
		}
		time.Sleep(time.Minute)
		if acts.Load() != 1 {
			t.Fatal("acted twice")
		}
	})
}

func TestMarkerAndRestartCap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		home := t.TempDir()
		l := lifecycle.New(home)
		rec, err := l.Begin(lifecycle.Run{PID: 10, BootID: "a"})
		if err != nil || rec.Unclean {
			t.Fatalf("first boot: %+v, %v", rec, err)
		}
		if err := l.End(); err != nil {
			t.Fatal(err)
		}
		if rec, _ := l.Begin(lifecycle.Run{PID: 11}); rec.Unclean {
			t.Fatal("a clean stop was taken for a crash")
		}
		// Crashes: the marker stays. The second crash within 10 s waits.
		for i := 1; i <= lifecycle.MaxRestartsPerHour; i++ {
			time.Sleep(3 * time.Second)
			rec, err := l.Begin(lifecycle.Run{PID: 11 + i})
			if err != nil || !rec.Unclean || rec.RecentUnclean != i || rec.Previous.PID != 10+i {
				t.Fatalf("crash %d: %+v, %v", i, rec, err)
			}
			if i >= 2 && rec.Wait <= 0 {
				t.Errorf("crash %d 3 s after the last: no backoff", i)
			}
		}
		_, err = l.Begin(lifecycle.Run{PID: 99})
		if !errors.Is(err, talos.ErrPanic) {
			t.Fatalf("sixth unclean restart within the hour: %v", err)
		}
		// An hour later the history has aged out.
		time.Sleep(time.Hour)
		if rec, err := l.Begin(lifecycle.Run{PID: 100}); err != nil || rec.RecentUnclean != 1 {
			t.Fatalf("an hour later: %+v, %v", rec, err)
		}
		l.End()
		if err := l.Clear(); err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"restarts.json"} {
			if _, err := os.Stat(filepath.Join(home, lifecycle.Dir, f)); err == nil {
				t.Errorf("%s still there after Clear", f)
			}
		}
	})
}

func TestPanicFile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		home := t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		got := make(chan lifecycle.PanicRequest, 1)
		go func() {
			r, ok := lifecycle.WatchPanic(ctx, home)
			if ok {
				got <- r
			}
		}()
		time.Sleep(12 * time.Second)
		synctest.Wait()
		select {
		case r := <-got:
			t.Fatalf("panicked without a file: %+v", r)
		default:
		}
		if err := lifecycle.RequestPanic(home, lifecycle.PanicRequest{InitiatedBy: "user:ann", Reason: "it is doing odd things"}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(lifecycle.PanicPoll)
		r := <-got
		if r.InitiatedBy != "user:ann" || r.Reason != "it is doing odd things" {
			t.Errorf("request %+v", r)
		}
		if _, err := os.Stat(filepath.Join(home, lifecycle.PanicFile)); err == nil {
			t.Error("the panic file was not removed")
		}
		// An empty file still panics, with defaults.
		os.WriteFile(filepath.Join(home, lifecycle.PanicFile), nil, 0o600)
		r, ok := lifecycle.WatchPanic(ctx, home)
		if !ok || r.Reason == "" || r.InitiatedBy != "unknown" {
			t.Errorf("empty file: %+v, %v", r, ok)
		}
	})
}
