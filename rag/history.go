package rag

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
)

// History defaults: the last 10 messages of a session
// (MEMORY_CONTEXT_WINDOW).
const (
	// DefaultHistoryLimit is the number of messages kept per session.
	DefaultHistoryLimit = 10
	// DefaultHistoryTTL is how long a session's history lives after its last
	// message. The spec gives none; a day keeps a conversation across a
	// restart without keeping it forever.
	DefaultHistoryTTL = 24 * time.Hour
	// MaxSessionIDLen bounds session ids.
	MaxSessionIDLen = 128
)

// Message is one turn of a conversation.
type Message struct {
	Role    string    `json:"role"` // user, assistant, tool, system
	Content string    `json:"content"`
	At      time.Time `json:"at"`
}

// History is short-term memory: the last N messages of each session, which
// expire TTL after the session's last message. Implementations: rag/redis
// and MemoryHistory; both pass ragtest.RunHistory.
type History interface {
	// Append adds a message to the session, dropping the oldest beyond the
	// limit, and restarts the session's TTL.
	Append(ctx context.Context, session string, m Message) error
	// Recent returns up to n of the session's latest messages, oldest
	// first; n ≤ 0 means all that are kept.
	Recent(ctx context.Context, session string, n int) ([]Message, error)
	// Clear forgets the session.
	Clear(ctx context.Context, session string) error
}

// HistoryConfig configures a History. Zero fields take the defaults.
type HistoryConfig struct {
	Limit int           // messages kept per session (default DefaultHistoryLimit)
	TTL   time.Duration // expiry after the last message (default DefaultHistoryTTL)
}

// WithDefaults fills zero fields and validates the rest.
func (c HistoryConfig) WithDefaults() (HistoryConfig, error) {
	if c.Limit == 0 {
		c.Limit = DefaultHistoryLimit
	}
	if c.TTL == 0 {
		c.TTL = DefaultHistoryTTL
	}
	if c.Limit < 0 || c.Limit > 10000 {
		return c, talos.Errorf(talos.CodeConfigInvalid, "rag.HistoryConfig", "history limit %d must be between 1 and 10000", c.Limit)
	}
	if c.TTL < time.Second {
		return c, talos.Errorf(talos.CodeConfigInvalid, "rag.HistoryConfig", "history TTL %s must be at least 1s", c.TTL)
	}
	return c, nil
}

// ValidateSession checks a session id: 1 to MaxSessionIDLen printable
// characters without spaces.
func ValidateSession(op, session string) error {
	if session == "" || len(session) > MaxSessionIDLen || strings.ContainsFunc(session, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return talos.Errorf(talos.CodeConfigInvalid, op, "session id %q is invalid: it needs 1 to %d printable characters without spaces", session, MaxSessionIDLen)
	}
	return nil
}

// MemoryHistory is an in-process History (the embedded default when no Redis
// is configured). It is safe for concurrent use.
type MemoryHistory struct {
	cfg HistoryConfig

	mu       sync.Mutex
	sessions map[string]*memSession
}

type memSession struct {
	msgs    []Message
	expires time.Time
}

// NewMemoryHistory returns an empty in-process history.
func NewMemoryHistory(cfg HistoryConfig) (*MemoryHistory, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	return &MemoryHistory{cfg: cfg, sessions: map[string]*memSession{}}, nil
}

// Append implements History.
func (h *MemoryHistory) Append(ctx context.Context, session string, m Message) error {
	if err := ValidateSession("rag.MemoryHistory.Append", session); err != nil {
		return err
	}
	if m.At.IsZero() {
		m.At = time.Now()
	}
	now := time.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gcLocked(now)
	s := h.sessions[session]
	if s == nil {
		s = &memSession{}
		h.sessions[session] = s
	}
	s.msgs = append(s.msgs, m)
	if over := len(s.msgs) - h.cfg.Limit; over > 0 {
		s.msgs = append([]Message(nil), s.msgs[over:]...)
	}
	s.expires = now.Add(h.cfg.TTL)
	return nil
}

func (h *MemoryHistory) gcLocked(now time.Time) {
	for k, s := range h.sessions {
		if !now.Before(s.expires) {
			delete(h.sessions, k)
		}
	}
}

// Recent implements History.
func (h *MemoryHistory) Recent(ctx context.Context, session string, n int) ([]Message, error) {
	if err := ValidateSession("rag.MemoryHistory.Recent", session); err != nil {
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.gcLocked(time.Now())
	s := h.sessions[session]
	if s == nil {
		return nil, nil
	}
	msgs := s.msgs
	if n > 0 && len(msgs) > n {
		msgs = msgs[len(msgs)-n:]
	}
	return append([]Message(nil), msgs...), nil
}

// Clear implements History.
func (h *MemoryHistory) Clear(ctx context.Context, session string) error {
	if err := ValidateSession("rag.MemoryHistory.Clear", session); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.sessions, session)
	return nil
}

// String describes the history for logs.
func (h *MemoryHistory) String() string {
	return fmt.Sprintf("memory history (last %d messages, TTL %s)", h.cfg.Limit, h.cfg.TTL)
}
