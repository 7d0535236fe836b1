package breaker

import (
	"context"
	"sync"
	"time"
)

// Record is the persisted state of one breaker. Only Open and Closed are
// stored: half-open is a probing phase local to a process (an open record
// whose period has ended means "probe").
type Record struct {
	State   State
	Until   time.Time // end of the open period when State is Open
	Step    int       // ladder position after this record's trip
	Updated time.Time // when the record was written; newer records win
}

// Store persists breakers so that an open breaker survives a restart and
// several processes share one breaker. Implementations must be safe for
// concurrent use; breaker/breakertest.Run checks them.
type Store interface {
	// AddFailure records a failure of breaker name at time at, forgets the
	// failures older than at-window, and returns how many remain (this
	// one included), across every process sharing the store.
	AddFailure(ctx context.Context, name string, at time.Time, window time.Duration) (int, error)
	// ClearFailures forgets all failures of name.
	ClearFailures(ctx context.Context, name string) error
	// Save stores r for name unless the stored record is newer
	// (r.Updated before the stored Updated).
	Save(ctx context.Context, name string, r Record) error
	// Load returns the record of name; ok is false when there is none.
	Load(ctx context.Context, name string) (r Record, ok bool, err error)
}

// MemoryStore is a Store in process memory: breakers created with the same
// MemoryStore share failures and trips. It is useful in tests and for several
// breakers guarding one service inside one process.
type MemoryStore struct {
	mu       sync.Mutex
	failures map[string][]time.Time
	records  map[string]Record
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{failures: map[string][]time.Time{}, records: map[string]Record{}}
}

// AddFailure implements Store.
func (m *MemoryStore) AddFailure(ctx context.Context, name string, at time.Time, window time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	from := at.Add(-window)
	kept := m.failures[name][:0]
	for _, t := range m.failures[name] {
		if t.After(from) {
			kept = append(kept, t)
		}
	}
	kept = append(kept, at)
	m.failures[name] = kept
	return len(kept), nil
}

// ClearFailures implements Store.
func (m *MemoryStore) ClearFailures(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.failures, name)
	return nil
}

// Save implements Store.
func (m *MemoryStore) Save(ctx context.Context, name string, r Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if old, ok := m.records[name]; ok && r.Updated.Before(old.Updated) {
		return nil
	}
	m.records[name] = r
	return nil
}

// Load implements Store.
func (m *MemoryStore) Load(ctx context.Context, name string) (Record, bool, error) {
	if err := ctx.Err(); err != nil {
		return Record{}, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.records[name]
	return r, ok, nil
}
