package quarantine

import (
	"context"
	"errors"
	"slices"
	"strings"
	"time"
)

// Key is the identity trust is bound to: a skill's id, its version and the
// content hash of its files. A changed byte or a new version is a different
// Key, and so a different record that starts again at pending.
type Key struct {
	ID      string `json:"id"`
	Version string `json:"version"`
	Hash    string `json:"hash"` // Content.Hash
}

// String returns "id@version#" and the first 12 hex digits of the hash, for
// messages.
func (k Key) String() string {
	h := k.Hash
	if len(h) > 12 {
		h = h[:12]
	}
	return k.ID + "@" + k.Version + "#" + h
}

// Subject returns "id@version#hash" with the whole hash: the subject of the
// record's audit entries.
func (k Key) Subject() string { return k.ID + "@" + k.Version + "#" + k.Hash }

// SourceType says where a skill came from.
type SourceType string

// The sources a skill may come from.
const (
	SourceLLM      SourceType = "llm_generated"
	SourceUser     SourceType = "user_submitted"
	SourceImported SourceType = "imported"
	SourceForked   SourceType = "forked"
)

// SourceTypes lists the valid source types.
func SourceTypes() []SourceType {
	return []SourceType{SourceLLM, SourceUser, SourceImported, SourceForked}
}

// Valid reports whether t is one of SourceTypes.
func (t SourceType) Valid() bool { return slices.Contains(SourceTypes(), t) }

// sourceTypesText lists the valid source types for error messages.
func sourceTypesText() string {
	ts := SourceTypes()
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = string(t)
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Source says where a skill came from and who or what made it.
type Source struct {
	Type   SourceType `json:"type"`
	Origin string     `json:"origin"` // model name, user or import source
}

// ScanStatus is the outcome of the static scan of a record's files.
type ScanStatus string

// Scan outcomes. A record is scanned before its first run; only
// ScanPassed lets it run.
const (
	ScanNotRun ScanStatus = "not_run"
	ScanPassed ScanStatus = "passed"
	ScanFailed ScanStatus = "failed"
)

// ApprovalStatus is where a promotion request is.
type ApprovalStatus string

// Promotion request outcomes.
const (
	ApprovalPending  ApprovalStatus = "pending"
	ApprovalApproved ApprovalStatus = "approved"
	ApprovalRejected ApprovalStatus = "rejected"
	ApprovalExpired  ApprovalStatus = "expired"
)

// Approval is a record's promotion request. The code a person must enter
// is never stored: only its keyed hash is.
type Approval struct {
	RequestedAt time.Time      `json:"requested_at"`
	ExpiresAt   time.Time      `json:"expires_at"`
	RequestedBy string         `json:"requested_by"`
	CodeHash    string         `json:"code_hash"` // hex HMAC-SHA256 of the code, keyed and bound to the record
	Attempts    int            `json:"attempts"`  // wrong codes entered so far
	Status      ApprovalStatus `json:"status"`
	DecidedAt   time.Time      `json:"decided_at,omitzero"`
	DecidedBy   string         `json:"decided_by,omitempty"`
}

// Record is what Talos knows about one (id, version, hash) of a skill.
type Record struct {
	Key
	State         State
	Language      Language
	Entry         string // entry point, relative to Path
	Source        Source
	Path          string // the quarantined copy
	ActivePath    string // the active copy, once promoted
	SizeBytes     int64
	CreatedAt     time.Time
	UpdatedAt     time.Time
	Scan          ScanStatus
	ScannedAt     time.Time // zero until scanned
	CleanRuns     int
	FailedRuns    int
	LastFailureAt time.Time // zero when no run failed
	Approval      *Approval // nil until promotion is requested
}

// AuditEntry is one entry of a record's audit trail: every change of a
// record appends one, in the same transaction as the change.
type AuditEntry struct {
	Seq    int64     // position in the store's chain, set by the store
	Time   time.Time // set by the store
	Key    Key       // set by the store
	Actor  string    // who: "system", "user:alice", "sandbox"
	Event  string    // an Event, or "added", "scanned", "code_wrong", …
	From   State
	To     State
	Reason string
}

// AuditHead is where a verified audit chain ends.
type AuditHead struct {
	Entries int64
	Hash    string
}

// Filter selects records for Store.List. Zero fields match everything.
type Filter struct {
	ID    string
	State State
}

// ErrNotFound is wrapped by a Store's error for a key it does not hold.
var ErrNotFound = errors.New("quarantine: no such skill record")

// ErrExists is wrapped by Store.Create's error when the key is already
// held.
var ErrExists = errors.New("quarantine: skill record already exists")

// Store keeps skill records and their tamper-evident audit trail. Package
// quarantine/sqlstore keeps them in SQLite or PostgreSQL, package
// quarantine/quarantinetest in memory; both pass
// quarantinetest.RunStore.
type Store interface {
	// Create adds rec and appends entry, atomically. A record with the same
	// Key fails with an error wrapping ErrExists and changes nothing.
	Create(ctx context.Context, rec Record, entry AuditEntry) error
	// Get returns the record of key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key Key) (Record, error)
	// List returns the records f selects, oldest first (ties by id,
	// version and hash).
	List(ctx context.Context, f Filter) ([]Record, error)
	// Update reads the record of key, lets fn change it and say what
	// happened, then writes it and appends the entry, all in one
	// transaction that no other Update of the key interleaves with. If fn
	// returns an error nothing is written and Update returns it. fn may be
	// called more than once (a transaction retried after lock contention),
	// so it must not have effects outside rec. fn may not change rec.Key.
	Update(ctx context.Context, key Key, fn func(rec *Record) (AuditEntry, error)) (Record, error)
	// Audit returns the audit entries of key, oldest first.
	Audit(ctx context.Context, key Key) ([]AuditEntry, error)
	// Verify checks the whole audit chain and returns its head; an edited,
	// deleted, inserted or reordered entry fails with code T402.
	Verify(ctx context.Context) (AuditHead, error)
}
