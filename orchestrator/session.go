package orchestrator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// session is the per-session state: one turn at a time, whether the
// firewall flagged the conversation, and when it was last used.
type session struct {
	id      string
	created time.Time
	turn    chan struct{} // holds one token while a turn runs
	// guarded by Orchestrator.mu
	last    time.Time
	users   int // Chat calls holding the session (it cannot expire)
	flagged bool
	turns   int
}

func (s *session) lock(ctx context.Context) error {
	select {
	case s.turn <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *session) unlock() { <-s.turn }

// flagged reports whether the firewall flagged the session.
func (o *Orchestrator) flagged(s *session) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return s.flagged
}

// flag marks the session flagged: it never escalates again.
func (o *Orchestrator) flag(s *session) {
	o.mu.Lock()
	s.flagged = true
	o.mu.Unlock()
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// session returns the session id (a new one when id is ""), reserved for one
// Chat call. Expired sessions are dropped first.
func (o *Orchestrator) session(id string) (*session, error) {
	const op = "orchestrator.Chat"
	if id != "" {
		if err := rag.ValidateSession(op, id); err != nil {
			return nil, err
		}
	}
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	expired := o.expireLocked(now)
	if len(expired) > 0 {
		go o.forget(expired)
	}
	if id != "" {
		s, ok := o.sessions[id]
		if !ok {
			return nil, talos.E(talos.CodeConfigInvalid, op, fmt.Sprintf("session %q does not exist or expired after %s without a turn; start a new session (send no session id)", id, o.cfg.SessionTimeout), ErrNoSession)
		}
		s.users++
		s.last = now
		return s, nil
	}
	if len(o.sessions) >= o.cfg.MaxSessions {
		return nil, talos.E(talos.CodeRateLimited, op, fmt.Sprintf("%d sessions are open, the most allowed; continue an existing session or retry once idle ones expire (after %s)", len(o.sessions), o.cfg.SessionTimeout), ErrTooManySessions)
	}
	s := &session{id: newSessionID(), created: now, last: now, users: 1, turn: make(chan struct{}, 1)}
	o.sessions[s.id] = s
	return s, nil
}

// release ends a Chat call's hold on s and restarts its timeout.
func (o *Orchestrator) release(s *session) {
	o.mu.Lock()
	s.users--
	s.turns++
	s.last = time.Now()
	o.mu.Unlock()
}

// expireLocked removes the sessions idle for SessionTimeout and returns
// their ids.
func (o *Orchestrator) expireLocked(now time.Time) []string {
	var out []string
	for id, s := range o.sessions {
		if s.users == 0 && now.Sub(s.last) >= o.cfg.SessionTimeout {
			delete(o.sessions, id)
			out = append(out, id)
		}
	}
	return out
}

// forget clears the short-term history of expired sessions (best effort:
// the history's own TTL removes it anyway).
func (o *Orchestrator) forget(ids []string) {
	if o.d.History == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, id := range ids {
		if err := o.d.History.Clear(ctx, id); err != nil {
			o.log.Warn("orchestrator: clearing an expired session's history failed", "session", id, "err", err)
		}
	}
}

// Expire drops every session idle for SessionTimeout and returns how many
// it dropped. Chat does it too; a daemon may call it on a timer.
func (o *Orchestrator) Expire() int {
	o.mu.Lock()
	ids := o.expireLocked(time.Now())
	o.mu.Unlock()
	o.forget(ids)
	return len(ids)
}

// SessionInfo describes an open session.
type SessionInfo struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"last_used"`
	Turns    int       `json:"turns"`
	Flagged  bool      `json:"flagged"`
}

// Sessions lists the open sessions, oldest first.
func (o *Orchestrator) Sessions() []SessionInfo {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]SessionInfo, 0, len(o.sessions))
	for _, s := range o.sessions {
		out = append(out, SessionInfo{ID: s.id, Created: s.created, LastUsed: s.last, Turns: s.turns, Flagged: s.flagged})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// NewSession opens a session and returns its id.
func (o *Orchestrator) NewSession() (string, error) {
	s, err := o.session("")
	if err != nil {
		return "", err
	}
	o.release(s)
	return s.id, nil
}
