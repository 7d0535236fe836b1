package breaker

import (
	"context"
	"sync"
	"time"
)

// Record is the persisted state of one breaker. Only Open and Closed are
// stored as records: an open record whose period has ended means "probe"
// (half-open). The progress of that half-open period (probe slots taken,
// probe successes) is shared through the Store's probe methods, keyed by the
// period's identity (see Store.AcquireProbe), so that probes made by
// different processes (one-shot `talos ask` runs included) add up and close
// the shared breaker.
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

	// AcquireProbe atomically takes one of max probe slots of the
	// half-open period `period` of name, for the probe call named probe
	// (unique across processes), and reports whether it was granted.
	// period identifies the open period the half-open phase follows: the
	// end of that open period (Record.Until) in unix microseconds, which
	// every process sharing the record computes alike. A granted slot is
	// held until ReleaseProbe, kept for the rest of the period by
	// ProbeSuccess, or forgotten once at+lease has passed (measured on
	// the `at` of later calls), so that a process which died during its
	// probe does not hold its slot for ever.
	AcquireProbe(ctx context.Context, name string, period int64, probe string, max int, at time.Time, lease time.Duration) (bool, error)
	// ReleaseProbe gives probe's slot back (the probe's result said
	// nothing about the service's health).
	ReleaseProbe(ctx context.Context, name string, period int64, probe string) error
	// ProbeSuccess records that probe succeeded: its slot stays taken for
	// the rest of the period. It returns the successes of the period so
	// far across every process, this one included.
	ProbeSuccess(ctx context.Context, name string, period int64, probe string) (int, error)
}

// MemoryStore is a Store in process memory: breakers created with the same
// MemoryStore share failures and trips. It is useful in tests and for several
// breakers guarding one service inside one process.
type MemoryStore struct {
	mu       sync.Mutex
	failures map[string][]time.Time
	records  map[string]Record
	probes   map[string]*memProbes
}

// memProbes is the half-open progress of one breaker: only the newest
// period is kept.
type memProbes struct {
	period int64
	until  map[string]time.Time // probe → lease end; zero time = succeeded
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{failures: map[string][]time.Time{}, records: map[string]Record{}, probes: map[string]*memProbes{}}
}

// probesLocked returns the progress of period, or nil when period is
// older than the newest one seen (a stale half-open phase).
func (m *MemoryStore) probesLocked(name string, period int64) *memProbes {
	p := m.probes[name]
	if p == nil || p.period < period {
		p = &memProbes{period: period, until: map[string]time.Time{}}
		m.probes[name] = p
	}
	if p.period != period {
		return nil
	}
	return p
}

// AcquireProbe implements Store.
func (m *MemoryStore) AcquireProbe(ctx context.Context, name string, period int64, probe string, max int, at time.Time, lease time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.probesLocked(name, period)
	if p == nil {
		return false, nil
	}
	if _, held := p.until[probe]; held {
		return true, nil
	}
	for id, u := range p.until {
		if !u.IsZero() && !u.After(at) {
			delete(p.until, id)
		}
	}
	if len(p.until) >= max {
		return false, nil
	}
	p.until[probe] = at.Add(lease)
	return true, nil
}

// ReleaseProbe implements Store.
func (m *MemoryStore) ReleaseProbe(ctx context.Context, name string, period int64, probe string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if p := m.probes[name]; p != nil && p.period == period {
		if u, ok := p.until[probe]; ok && !u.IsZero() {
			delete(p.until, probe)
		}
	}
	return nil
}

// ProbeSuccess implements Store.
func (m *MemoryStore) ProbeSuccess(ctx context.Context, name string, period int64, probe string) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	p := m.probesLocked(name, period)
	if p == nil {
		return 0, nil
	}
	p.until[probe] = time.Time{}
	n := 0
	for _, u := range p.until {
		if u.IsZero() {
			n++
		}
	}
	return n, nil
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
