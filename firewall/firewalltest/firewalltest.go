package firewalltest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/firewall"
)

// MemoryStore is a firewall.Store in memory. Its zero value is ready.
type MemoryStore struct {
	mu    sync.Mutex
	state firewall.LockdownState
	// Err, when set, is returned by Load and Save.
	Err error
}

// Load returns the saved state.
func (s *MemoryStore) Load(ctx context.Context) (firewall.LockdownState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return firewall.LockdownState{}, s.Err
	}
	st := s.state
	st.CodeHash = append([]byte(nil), st.CodeHash...)
	return st, nil
}

// Save replaces the saved state.
func (s *MemoryStore) Save(ctx context.Context, st firewall.LockdownState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Err != nil {
		return s.Err
	}
	st.CodeHash = append([]byte(nil), st.CodeHash...)
	s.state = st
	return nil
}

// Notifier records every unlock notice. Its zero value is ready.
type Notifier struct {
	mu      sync.Mutex
	notices []firewall.UnlockNotice
	// Err, when set, is returned by DeliverUnlockCode (the notice is still
	// recorded).
	Err error
}

// DeliverUnlockCode records n.
func (n *Notifier) DeliverUnlockCode(ctx context.Context, u firewall.UnlockNotice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notices = append(n.notices, u)
	return n.Err
}

// Notices returns the recorded notices, oldest first.
func (n *Notifier) Notices() []firewall.UnlockNotice {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]firewall.UnlockNotice(nil), n.notices...)
}

// LastCode returns the most recent code, or "" when none was delivered.
func (n *Notifier) LastCode() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.notices) == 0 {
		return ""
	}
	return n.notices[len(n.notices)-1].Code
}

// RunStore checks that a firewall.Store keeps what it saves: the zero state
// before any save, every field round-tripping, the last save winning, and a
// second store opened by newStore's reopen function seeing the same state
// (persistence across a restart). newStore returns a fresh store and a
// function that opens another handle on the same storage.
func RunStore(t *testing.T, newStore func(t *testing.T) (firewall.Store, func() firewall.Store)) {
	ctx := context.Background()
	t.Run("EmptyIsZero", func(t *testing.T) {
		s, _ := newStore(t)
		st, err := s.Load(ctx)
		if err != nil {
			t.Fatalf("Load on a new store: %v", err)
		}
		if st.Active || st.ID != "" || len(st.CodeHash) != 0 {
			t.Fatalf("new store holds %+v, want the zero state", st)
		}
	})
	t.Run("RoundTripAndReopen", func(t *testing.T) {
		s, reopen := newStore(t)
		now := time.Date(2026, 11, 23, 18, 0, 0, 0, time.UTC)
		want := firewall.LockdownState{
			Active: true, ID: "ld-1", TriggeredAt: now, TriggeredBy: "firewall", Reason: "PI-001",
			CodeHash: []byte{1, 2, 3, 4}, CodeExpires: now.Add(24 * time.Hour), CodeGeneration: 2, FailedAttempts: 3,
		}
		if err := s.Save(ctx, firewall.LockdownState{ID: "older"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Save(ctx, want); err != nil {
			t.Fatal(err)
		}
		for name, store := range map[string]firewall.Store{"same": s, "reopened": reopen()} {
			got, err := store.Load(ctx)
			if err != nil {
				t.Fatalf("%s: Load: %v", name, err)
			}
			if !got.Active || got.ID != want.ID || !got.TriggeredAt.Equal(want.TriggeredAt) || got.TriggeredBy != want.TriggeredBy ||
				got.Reason != want.Reason || string(got.CodeHash) != string(want.CodeHash) || !got.CodeExpires.Equal(want.CodeExpires) ||
				got.CodeGeneration != want.CodeGeneration || got.FailedAttempts != want.FailedAttempts {
				t.Fatalf("%s: Load = %+v, want %+v", name, got, want)
			}
		}
	})
}
