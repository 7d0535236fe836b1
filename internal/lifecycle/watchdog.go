package lifecycle

import (
	"context"
	"sync/atomic"
	"time"
)

// Watchdog defaults (the original specification's watchdog: heartbeat 1 s,
// warn at 5 s, act at 30 s).
const (
	DefaultWarnAfter = 5 * time.Second
	DefaultActAfter  = 30 * time.Second
	DefaultCheck     = time.Second
)

// Watchdog watches a heartbeat from its own goroutine, so a stalled loop
// cannot stop it from noticing (the spec's monitor ran on the loop it
// watched). OnWarn is called once per stall when the heartbeat is
// WarnAfter late; OnStall exactly once per Watchdog when it is ActAfter
// late.
type Watchdog struct {
	WarnAfter, ActAfter, Check time.Duration
	OnWarn                     func(late time.Duration)
	OnStall                    func(late time.Duration)

	last   atomic.Int64 // unix nanoseconds of the last Beat
	warned atomic.Bool
	acted  atomic.Bool
}

// Beat stamps the heartbeat.
func (w *Watchdog) Beat() {
	w.last.Store(time.Now().UnixNano())
	w.warned.Store(false)
}

// Acted reports whether OnStall was called.
func (w *Watchdog) Acted() bool { return w.acted.Load() }

// Run watches until ctx ends or the watchdog has acted. The heartbeat
// counts from the start of Run.
func (w *Watchdog) Run(ctx context.Context) {
	warnAfter, actAfter, check := w.WarnAfter, w.ActAfter, w.Check
	if warnAfter <= 0 {
		warnAfter = DefaultWarnAfter
	}
	if actAfter <= 0 {
		actAfter = DefaultActAfter
	}
	if check <= 0 {
		check = DefaultCheck
	}
	if w.last.Load() == 0 {
		w.Beat()
	}
	t := time.NewTicker(check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		late := time.Since(time.Unix(0, w.last.Load()))
		switch {
		case late >= actAfter:
			if w.acted.CompareAndSwap(false, true) && w.OnStall != nil {
				w.OnStall(late)
			}
			return
		case late >= warnAfter:
			if w.warned.CompareAndSwap(false, true) && w.OnWarn != nil {
				w.OnWarn(late)
			}
		}
	}
}
