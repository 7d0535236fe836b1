package genesis

import (
	"log/slog"
	"testing"
	"testing/synctest"
	"time"
)

// An idle timer that fired while an operation held the session (its
// callback waiting for the lock) does not end the session the operation
// just used: the operation re-armed the timer, and only that arming may
// end it, a full idle period later.
func TestIdleTimerFiredDuringAnOperationDoesNotEndTheSession(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := &Browser{cfg: BrowserConfig{IdleTimeout: time.Minute}, log: slog.New(slog.DiscardHandler), sessions: map[string]*browserSession{}}
		s := &browserSession{b: b, id: "s1"}
		b.sessions[s.id] = s
		s.mu.Lock()
		s.armIdle()
		fired := s.idleGen
		s.mu.Unlock()

		// An operation takes the session; the timer fires meanwhile and its
		// callback waits for the lock; the operation ends and re-arms.
		s.mu.Lock()
		s.timer.Stop()
		waiting := make(chan struct{})
		go func() { close(waiting); s.endIdle(fired) }()
		<-waiting
		s.armIdle()
		s.mu.Unlock()
		gone := func() bool {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.gone
		}
		synctest.Wait()
		if gone() {
			t.Fatal("the session ended on the timer of before its last use")
		}
		time.Sleep(time.Minute - time.Second)
		synctest.Wait()
		if gone() {
			t.Fatal("the session ended before a full idle period after its last use")
		}
		time.Sleep(2 * time.Second)
		synctest.Wait()
		b.mu.Lock()
		left := len(b.sessions)
		b.mu.Unlock()
		if !gone() || left != 0 {
			t.Fatal("the session did not end a full idle period after its last use")
		}
	})
}
