package strikestest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/talos-ironclad/talos/strikes"
)

// MemoryStore is a strikes.Store in memory, safe for concurrent use. Its
// audit chain is hash-linked like the SQL store's, without signatures.
type MemoryStore struct {
	mu      sync.Mutex
	strikes []strikes.Strike
	deps    map[string]strikes.Deprecation // by id@version
	audit   []string                       // entry hashes, each over the previous
	events  []strikes.Event
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{deps: map[string]strikes.Deprecation{}}
}

// Update implements strikes.Store.
func (m *MemoryStore) Update(ctx context.Context, skill strikes.Skill, fn func(strikes.State) (strikes.Change, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	ch, err := fn(m.state(skill))
	if err != nil {
		return err
	}
	if ch.Add != nil {
		for _, s := range m.strikes {
			if s.Skill.ID == ch.Add.Skill.ID && s.Skill.Version == ch.Add.Skill.Version && s.Number == ch.Add.Number {
				return fmt.Errorf("strike %d of %s already exists", s.Number, s.Skill)
			}
		}
	}
	if ch.Deprecate != nil {
		if _, ok := m.deps[ch.Deprecate.Skill.String()]; ok {
			return fmt.Errorf("%s is already deprecated", ch.Deprecate.Skill)
		}
	}
	for _, c := range ch.Statuses {
		for i := range m.strikes {
			s := &m.strikes[i]
			if s.Skill.ID == c.SkillID && s.Skill.Version == c.Version && s.Number == c.Number {
				s.Status = c.Status
			}
		}
	}
	if ch.Add != nil {
		m.strikes = append(m.strikes, *ch.Add)
	}
	if ch.Deprecate != nil {
		d := *ch.Deprecate
		d.Numbers = append([]int(nil), d.Numbers...)
		m.deps[d.Skill.String()] = d
	}
	for _, e := range ch.Audit {
		prev := ""
		if len(m.audit) > 0 {
			prev = m.audit[len(m.audit)-1]
		}
		b, _ := json.Marshal(struct {
			Prev, Subject string
			E             strikes.Event
		}{prev, skill.String(), e})
		sum := sha256.Sum256(b)
		m.audit = append(m.audit, hex.EncodeToString(sum[:]))
		m.events = append(m.events, e)
	}
	return nil
}

func (m *MemoryStore) state(skill strikes.Skill) strikes.State {
	var st strikes.State
	for _, s := range m.strikes {
		if (s.Skill.ID == skill.ID && s.Skill.Version == skill.Version) || s.Skill.Hash == skill.Hash {
			st.Strikes = append(st.Strikes, s)
		}
	}
	if d, ok := m.deps[skill.String()]; ok {
		d.Numbers = append([]int(nil), d.Numbers...)
		st.Deprecated = &d
	}
	return st
}

// State implements strikes.Store.
func (m *MemoryStore) State(ctx context.Context, skill strikes.Skill) (strikes.State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.state(skill), ctx.Err()
}

// All implements strikes.Store.
func (m *MemoryStore) All(ctx context.Context) ([]strikes.Strike, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]strikes.Strike(nil), m.strikes...), ctx.Err()
}

// VerifyAudit implements strikes.Store: the in-memory chain cannot be
// edited from outside, so it returns its length.
func (m *MemoryStore) VerifyAudit(ctx context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.audit)), ctx.Err()
}

// Events returns the audit events appended so far, oldest first.
func (m *MemoryStore) Events() []strikes.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]strikes.Event(nil), m.events...)
}
