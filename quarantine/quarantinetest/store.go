package quarantinetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
)

const genesis = "0000000000000000000000000000000000000000000000000000000000000000"

// Store is an in-memory quarantine.Store. Its audit trail is a hash chain
// like the SQL store's, so Verify detects entries edited through Tamper.
// It is safe for concurrent use.
type Store struct {
	mu      sync.Mutex
	records map[quarantine.Key]quarantine.Record
	audit   []chained
}

type chained struct {
	e        quarantine.AuditEntry
	prevHash string
	hash     string
}

// NewStore returns an empty Store.
func NewStore() *Store {
	return &Store{records: map[quarantine.Key]quarantine.Record{}}
}

var _ quarantine.Store = (*Store)(nil)

func clone(r quarantine.Record) quarantine.Record {
	if r.Approval != nil {
		a := *r.Approval
		r.Approval = &a
	}
	return r
}

func hashEntry(e quarantine.AuditEntry, prev string) string {
	e.Time = e.Time.UTC()
	b, _ := json.Marshal(struct {
		E    quarantine.AuditEntry
		Prev string
	}{e, prev})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// appendLocked adds e to the chain; s.mu is held.
func (s *Store) appendLocked(k quarantine.Key, e quarantine.AuditEntry) {
	prev := genesis
	if n := len(s.audit); n > 0 {
		prev = s.audit[n-1].hash
	}
	e.Seq = int64(len(s.audit) + 1)
	e.Time = time.Now().UTC()
	e.Key = k
	s.audit = append(s.audit, chained{e: e, prevHash: prev, hash: hashEntry(e, prev)})
}

func notFound(op string, k quarantine.Key) error {
	return talos.E(talos.CodePolicyDenied, op, "no skill record "+k.String()+": add the skill first", quarantine.ErrNotFound)
}

// Create implements quarantine.Store.
func (s *Store) Create(ctx context.Context, rec quarantine.Record, entry quarantine.AuditEntry) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.records[rec.Key]; ok {
		return talos.E(talos.CodePolicyDenied, "quarantinetest.Store.Create", "skill record "+rec.Key.String()+" already exists", quarantine.ErrExists)
	}
	s.records[rec.Key] = clone(rec)
	s.appendLocked(rec.Key, entry)
	return nil
}

// Get implements quarantine.Store.
func (s *Store) Get(ctx context.Context, key quarantine.Key) (quarantine.Record, error) {
	if err := ctx.Err(); err != nil {
		return quarantine.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[key]
	if !ok {
		return quarantine.Record{}, notFound("quarantinetest.Store.Get", key)
	}
	return clone(r), nil
}

// List implements quarantine.Store.
func (s *Store) List(ctx context.Context, f quarantine.Filter) ([]quarantine.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []quarantine.Record
	for _, r := range s.records {
		if (f.ID == "" || r.ID == f.ID) && (f.State == "" || r.State == f.State) {
			out = append(out, clone(r))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.CreatedAt.Equal(b.CreatedAt) {
			return a.CreatedAt.Before(b.CreatedAt)
		}
		if a.ID != b.ID {
			return a.ID < b.ID
		}
		if a.Version != b.Version {
			return a.Version < b.Version
		}
		return a.Hash < b.Hash
	})
	return out, nil
}

// Update implements quarantine.Store.
func (s *Store) Update(ctx context.Context, key quarantine.Key, fn func(rec *quarantine.Record) (quarantine.AuditEntry, error)) (quarantine.Record, error) {
	if err := ctx.Err(); err != nil {
		return quarantine.Record{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.records[key]
	if !ok {
		return quarantine.Record{}, notFound("quarantinetest.Store.Update", key)
	}
	r = clone(r)
	e, err := fn(&r)
	if err != nil {
		return quarantine.Record{}, err
	}
	if r.Key != key {
		return quarantine.Record{}, fmt.Errorf("quarantinetest.Store.Update: fn changed the key of %s", key)
	}
	s.records[key] = clone(r)
	s.appendLocked(key, e)
	return r, nil
}

// Audit implements quarantine.Store.
func (s *Store) Audit(ctx context.Context, key quarantine.Key) ([]quarantine.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []quarantine.AuditEntry
	for _, c := range s.audit {
		if c.e.Key == key {
			out = append(out, c.e)
		}
	}
	return out, nil
}

// Verify implements quarantine.Store.
func (s *Store) Verify(ctx context.Context) (quarantine.AuditHead, error) {
	if err := ctx.Err(); err != nil {
		return quarantine.AuditHead{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	head := quarantine.AuditHead{Hash: genesis}
	for i, c := range s.audit {
		switch {
		case c.e.Seq != int64(i+1):
			return head, talos.Errorf(talos.CodeBadSignature, "quarantinetest.Store.Verify", "audit chain is broken at entry %d: entry missing or out of order", i+1)
		case c.prevHash != head.Hash:
			return head, talos.Errorf(talos.CodeBadSignature, "quarantinetest.Store.Verify", "audit chain is broken at entry %d: it does not link to the entry before it", c.e.Seq)
		case hashEntry(c.e, c.prevHash) != c.hash:
			return head, talos.Errorf(talos.CodeBadSignature, "quarantinetest.Store.Verify", "audit chain is broken at entry %d: content does not match its hash: edited", c.e.Seq)
		}
		head = quarantine.AuditHead{Entries: c.e.Seq, Hash: c.hash}
	}
	return head, nil
}

// Tamper lets a test edit the audit entry with sequence number seq in
// place, as an attacker with write access to the store would; Verify then
// names it.
func (s *Store) Tamper(seq int64, edit func(e *quarantine.AuditEntry)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq >= 1 && seq <= int64(len(s.audit)) {
		edit(&s.audit[seq-1].e)
	}
}
