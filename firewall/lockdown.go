package firewall

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/big"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/atomicfile"
)

// Lockdown defaults.
const (
	// DefaultCodeTTL is how long an unlock code is valid (spec: 24 h).
	DefaultCodeTTL = 24 * time.Hour
	// DefaultMaxAttempts is how many wrong codes burn a code; an operator
	// must then re-issue one (the spec allowed unlimited attempts).
	DefaultMaxAttempts = 5
	// DefaultCodeDigits is the unlock code length (the spec's 4 digits
	// under an unsalted SHA-256 were trivially reversible; we use 6
	// digits under HMAC-SHA256 with a per-install key, like a skill's
	// promotion code).
	DefaultCodeDigits = 6
	// MinKeyBytes is the shortest accepted HMAC key.
	MinKeyBytes = 16
)

// LockdownState is the persisted state of the lockdown.
type LockdownState struct {
	Active      bool      `json:"active"`
	ID          string    `json:"id,omitempty"`
	TriggeredAt time.Time `json:"triggered_at,omitzero"`
	TriggeredBy string    `json:"triggered_by,omitempty"`
	Reason      string    `json:"reason,omitempty"`
	// CodeHash is HMAC-SHA256(key, id, generation, code); never the code.
	CodeHash       []byte    `json:"code_hash,omitempty"`
	CodeExpires    time.Time `json:"code_expires,omitzero"`
	CodeGeneration int       `json:"code_generation,omitempty"`
	FailedAttempts int       `json:"failed_attempts,omitempty"`
	UnlockedAt     time.Time `json:"unlocked_at,omitzero"`
	UnlockedBy     string    `json:"unlocked_by,omitempty"`
}

// Store persists the lockdown state so that a restart keeps it. Load returns
// the zero state (not locked) when nothing was saved yet.
type Store interface {
	Load(ctx context.Context) (LockdownState, error)
	Save(ctx context.Context, s LockdownState) error
}

// UnlockNotice is what a Notifier delivers to a person: the only place the
// plain unlock code ever goes.
type UnlockNotice struct {
	LockdownID string
	Code       string
	ExpiresAt  time.Time
	Reason     string
}

// Notifier delivers an unlock code to a person out of band (console,
// dashboard's local view, speech). Implementations must not log the code.
type Notifier interface {
	DeliverUnlockCode(ctx context.Context, n UnlockNotice) error
}

// LockdownConfig configures a Lockdown.
type LockdownConfig struct {
	// Key is the per-install HMAC key for code hashes (at least
	// MinKeyBytes; see LoadOrCreateKey). Required.
	Key         []byte
	CodeTTL     time.Duration // zero = DefaultCodeTTL
	MaxAttempts int           // zero = DefaultMaxAttempts
	CodeDigits  int           // zero = DefaultCodeDigits (allowed 6…12)
	Logger      *slog.Logger  // receives lockdown records; nil discards
}

// UnlockResult is the outcome of an unlock attempt.
type UnlockResult string

// Unlock results, including the attempt limit.
const (
	UnlockOK          UnlockResult = "unlocked"
	UnlockNotLocked   UnlockResult = "not_in_lockdown"
	UnlockExpired     UnlockResult = "expired"
	UnlockInvalidCode UnlockResult = "invalid_code"
	UnlockExhausted   UnlockResult = "attempts_exhausted"
)

// Lockdown is the firewall's persisted lockdown: once triggered it holds
// across restarts until a person enters the code a Notifier delivered.
type Lockdown struct {
	cfg      LockdownConfig
	store    Store
	notifier Notifier
	alerts   *AlertRouter
	log      *slog.Logger

	mu    sync.Mutex
	state LockdownState
	// unsaved is true when state holds failed attempts the store has not
	// saved yet (it failed); Unlock saves them first.
	unsaved bool
}

// NewLockdown loads the persisted state from store. It fails (closed) when
// the state cannot be read. alerts may be nil.
func NewLockdown(ctx context.Context, cfg LockdownConfig, store Store, notifier Notifier, alerts *AlertRouter) (*Lockdown, error) {
	const op = "firewall.NewLockdown"
	switch {
	case len(cfg.Key) < MinKeyBytes:
		return nil, talos.Errorf(talos.CodeSecretMissing, op, "LockdownConfig.Key has %d bytes; at least %d are required (use LoadOrCreateKey)", len(cfg.Key), MinKeyBytes)
	case store == nil:
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "store is nil; use NewFileStore so a restart keeps the lockdown")
	case notifier == nil:
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "notifier is nil; the unlock code must reach a person")
	case cfg.CodeTTL < 0, cfg.MaxAttempts < 0:
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "CodeTTL %v and MaxAttempts %d must not be negative", cfg.CodeTTL, cfg.MaxAttempts)
	case cfg.CodeDigits != 0 && (cfg.CodeDigits < 6 || cfg.CodeDigits > 12):
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "CodeDigits is %d; allowed 6…12", cfg.CodeDigits)
	}
	if cfg.CodeTTL == 0 {
		cfg.CodeTTL = DefaultCodeTTL
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultMaxAttempts
	}
	if cfg.CodeDigits == 0 {
		cfg.CodeDigits = DefaultCodeDigits
	}
	cfg.Key = append([]byte(nil), cfg.Key...)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	st, err := store.Load(ctx)
	if err != nil {
		return nil, talos.E(talos.CodeLockdown, op, "the lockdown state cannot be read; refusing to start unlocked", err)
	}
	return &Lockdown{cfg: cfg, store: store, notifier: notifier, alerts: alerts, log: log, state: st}, nil
}

// Locked reports whether the lockdown is active.
func (l *Lockdown) Locked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.state.Active
}

// State returns a copy of the state without the code hash.
func (l *Lockdown) State() LockdownState {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.state
	s.CodeHash = nil
	return s
}

// Trigger enters lockdown. If already locked it changes nothing and returns
// the current state with created=false (idempotent). Otherwise it
// issues a code, persists the state, delivers the code through the Notifier
// and sends a critical alert. The lockdown holds in memory even when saving
// or delivery fails (the error says which; an operator can Reissue).
func (l *Lockdown) Trigger(ctx context.Context, by, reason string) (state LockdownState, created bool, err error) {
	const op = "firewall.Lockdown.Trigger"
	l.mu.Lock()
	if l.state.Active {
		s := l.state
		l.mu.Unlock()
		s.CodeHash = nil
		return s, false, nil
	}
	if by == "" {
		by = "firewall"
	}
	l.state = LockdownState{Active: true, ID: newID(), TriggeredAt: time.Now().UTC(), TriggeredBy: by, Reason: reason}
	code, err := l.issueLocked()
	if err != nil {
		l.mu.Unlock()
		return l.State(), true, talos.E(talos.CodeLockdown, op, "locked, but no unlock code could be generated; re-issue one", err)
	}
	s := l.state
	saveErr := l.store.Save(ctx, s)
	l.mu.Unlock()
	s.CodeHash = nil
	l.log.ErrorContext(ctx, "firewall: SECURITY LOCKDOWN ACTIVATED", "lockdown_id", s.ID, "by", by, "reason", reason, "code_expires", s.CodeExpires)
	var errs []error
	if saveErr != nil {
		errs = append(errs, talos.E(talos.CodeLockdown, op, "locked, but the state could not be saved; a restart would lose it", saveErr))
	}
	if err := l.notifier.DeliverUnlockCode(ctx, UnlockNotice{LockdownID: s.ID, Code: code, ExpiresAt: s.CodeExpires, Reason: reason}); err != nil {
		errs = append(errs, talos.E(talos.CodeLockdown, op, "locked, but the unlock code could not be delivered; re-issue it", err))
	}
	if l.alerts != nil {
		_, _ = l.alerts.Route(ctx, Alert{
			ID: newID(), Timestamp: s.TriggeredAt, Severity: talos.SeverityCritical, Category: "security_lockdown",
			Title: "SECURITY LOCKDOWN ACTIVATED", Description: "Lockdown " + s.ID + " triggered by " + by + ": " + reason,
			Context: map[string]string{"lockdown_id": s.ID}, ActionTaken: ActionLockdown,
			Recommendations: []string{"System in lockdown - admin unlock required"},
		})
	}
	return s, true, errors.Join(errs...)
}

// issueLocked creates a fresh code for the active lockdown; l.mu is held.
func (l *Lockdown) issueLocked() (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(l.cfg.CodeDigits)), nil)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", err
	}
	code := fmt.Sprintf("%0*d", l.cfg.CodeDigits, n)
	l.state.CodeGeneration++
	l.state.CodeHash = l.hash(l.state.ID, l.state.CodeGeneration, code)
	l.state.CodeExpires = time.Now().UTC().Add(l.cfg.CodeTTL)
	l.state.FailedAttempts = 0
	return code, nil
}

func (l *Lockdown) hash(id string, gen int, code string) []byte {
	m := hmac.New(sha256.New, l.cfg.Key)
	m.Write([]byte("talos-lockdown-unlock\x00"))
	m.Write([]byte(id))
	var g [8]byte
	binary.BigEndian.PutUint64(g[:], uint64(gen))
	m.Write(g[:])
	m.Write([]byte(code))
	return m.Sum(nil)
}

// Unlock checks code and leaves lockdown when it is right. A wrong
// code counts an attempt, in memory first and then persisted; after
// MaxAttempts wrong codes, or once the code expired, only Reissue helps. The
// error is non-nil only when the state could not be saved: after a wrong
// code the attempt still counts (fail closed: a store outage does not lift
// the limit, though a restart during it forgets the unsaved attempts), after
// the right code the lockdown stays as it was.
func (l *Lockdown) Unlock(ctx context.Context, code, by string) (UnlockResult, error) {
	const op = "firewall.Lockdown.Unlock"
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.unsaved && l.store.Save(ctx, l.state) == nil {
		l.unsaved = false
	}
	s := l.state
	switch {
	case !s.Active:
		return UnlockNotLocked, nil
	case s.FailedAttempts >= l.cfg.MaxAttempts:
		return UnlockExhausted, nil
	case !time.Now().Before(s.CodeExpires):
		return UnlockExpired, nil
	}
	want := s.CodeHash
	got := l.hash(s.ID, s.CodeGeneration, strings.TrimSpace(code))
	if !hmac.Equal(want, got) {
		s.FailedAttempts++
		l.state = s // counted before it is saved, so a failing store cannot lift the limit
		l.log.WarnContext(ctx, "firewall: lockdown unlock failed", "lockdown_id", s.ID, "by", by, "failed_attempts", s.FailedAttempts)
		r := UnlockInvalidCode
		if s.FailedAttempts >= l.cfg.MaxAttempts {
			r = UnlockExhausted
		}
		if err := l.store.Save(ctx, s); err != nil {
			l.unsaved = true
			return r, talos.E(talos.CodeLockdown, op, fmt.Sprintf("wrong code; attempt %d of %d counts, but could not be saved", s.FailedAttempts, l.cfg.MaxAttempts), err)
		}
		l.unsaved = false
		return r, nil
	}
	s.Active = false
	s.CodeHash = nil
	s.UnlockedAt = time.Now().UTC()
	s.UnlockedBy = by
	if err := l.store.Save(ctx, s); err != nil {
		return UnlockInvalidCode, talos.E(talos.CodeLockdown, op, "right code, but the unlocked state could not be saved; still locked, try again", err)
	}
	l.state = s
	l.log.WarnContext(ctx, "firewall: SECURITY LOCKDOWN RELEASED", "lockdown_id", s.ID, "by", by)
	return UnlockOK, nil
}

// Reissue replaces the unlock code of the active lockdown with a fresh one
// (new expiry, attempts reset) and delivers it; the old code stops working.
// Only an operator should be able to call it.
func (l *Lockdown) Reissue(ctx context.Context, operator string) error {
	const op = "firewall.Lockdown.Reissue"
	l.mu.Lock()
	if !l.state.Active {
		l.mu.Unlock()
		return talos.Errorf(talos.CodeLockdown, op, "not in lockdown; there is no code to re-issue")
	}
	prev := l.state
	code, err := l.issueLocked()
	if err != nil {
		l.state = prev
		l.mu.Unlock()
		return talos.E(talos.CodeLockdown, op, "no code could be generated", err)
	}
	if err := l.store.Save(ctx, l.state); err != nil {
		l.state = prev
		l.mu.Unlock()
		return talos.E(talos.CodeLockdown, op, "the new code could not be saved; the old one stays valid", err)
	}
	l.unsaved = false
	s := l.state
	l.mu.Unlock()
	l.log.WarnContext(ctx, "firewall: lockdown unlock code re-issued", "lockdown_id", s.ID, "operator", operator, "generation", s.CodeGeneration)
	if err := l.notifier.DeliverUnlockCode(ctx, UnlockNotice{LockdownID: s.ID, Code: code, ExpiresAt: s.CodeExpires, Reason: s.Reason}); err != nil {
		return talos.E(talos.CodeLockdown, op, "the new code could not be delivered; re-issue again", err)
	}
	return nil
}

// FileStore keeps the lockdown state in a JSON file written atomically
// (temporary file, fsync, rename) with mode 0600.
type FileStore struct {
	path string
	mu   sync.Mutex
}

// NewFileStore returns a store at path; the directory must exist.
func NewFileStore(path string) (*FileStore, error) {
	if path == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "firewall.NewFileStore", "path is empty; give the lockdown state file's path")
	}
	return &FileStore{path: path}, nil
}

// Load reads the state; a missing file is the zero state.
func (s *FileStore) Load(ctx context.Context) (LockdownState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return LockdownState{}, nil
	}
	if err != nil {
		return LockdownState{}, err
	}
	var st LockdownState
	if err := json.Unmarshal(b, &st); err != nil {
		return LockdownState{}, fmt.Errorf("lockdown state file %s is corrupt: %w", s.path, err)
	}
	return st, nil
}

// Save writes the state atomically.
func (s *FileStore) Save(ctx context.Context, st LockdownState) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(s.path, b, 0o600)
}

// LoadOrCreateKey reads the per-install HMAC key at path (hex or raw, at
// least MinKeyBytes) or, when the file does not exist, creates 32 random
// bytes and writes them hex-encoded with mode 0600.
func LoadOrCreateKey(path string) ([]byte, error) {
	const op = "firewall.LoadOrCreateKey"
	b, err := os.ReadFile(path)
	if err == nil {
		k := []byte(strings.TrimSpace(string(b)))
		if dec, herr := hexDecode(k); herr == nil {
			k = dec
		}
		if len(k) < MinKeyBytes {
			return nil, talos.Errorf(talos.CodeSecretMissing, op, "key file %s holds %d bytes; at least %d are required", path, len(k), MinKeyBytes)
		}
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, talos.E(talos.CodeSecretMissing, op, "key file "+path+" cannot be read", err)
	}
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		return nil, talos.E(talos.CodeSecretMissing, op, "no random key could be generated", err)
	}
	if err := atomicfile.WriteFile(path, []byte(fmt.Sprintf("%x\n", k)), 0o600); err != nil {
		return nil, talos.E(talos.CodeSecretMissing, op, "key file "+path+" cannot be written", err)
	}
	return k, nil
}

func hexDecode(b []byte) ([]byte, error) {
	out := make([]byte, len(b)/2)
	if len(b)%2 != 0 {
		return nil, errors.New("odd length")
	}
	for i := 0; i < len(out); i++ {
		if !isHex(b[2*i]) || !isHex(b[2*i+1]) {
			return nil, errors.New("not hex")
		}
		out[i] = unhex(b[2*i])<<4 | unhex(b[2*i+1])
	}
	return out, nil
}

// WriterNotifier delivers unlock codes by writing one line to W, meant for a
// terminal only a person reads (for example /dev/tty or the console of the
// machine), never a log file.
type WriterNotifier struct {
	W  io.Writer
	mu sync.Mutex
}

// DeliverUnlockCode writes the code and its expiry.
func (n *WriterNotifier) DeliverUnlockCode(ctx context.Context, u UnlockNotice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	_, err := fmt.Fprintf(n.W, "TALOS SECURITY LOCKDOWN %s: unlock code %s (valid until %s). Reason: %s\n",
		u.LockdownID, u.Code, u.ExpiresAt.UTC().Format(time.RFC3339), u.Reason)
	return err
}
