package quarantine

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
)

// Defaults of Config: what promotion requires.
const (
	// DefaultMinCleanRuns is how many clean sandboxed runs a skill needs
	// before promotion (min_successful_executions).
	DefaultMinCleanRuns = 3
	// DefaultMinAge is how long a skill stays in quarantine at least
	// (quarantine_min_duration_hours, TALOS_QUARANTINE_MIN_DURATION_HOURS).
	DefaultMinAge = 24 * time.Hour
	// DefaultFailureWindow is how long a failed run blocks promotion.
	DefaultFailureWindow = 7 * 24 * time.Hour
	// DefaultApprovalTTL is how long an approval code is valid.
	DefaultApprovalTTL = 24 * time.Hour
	// DefaultMaxCodeAttempts is how many wrong codes reject a request.
	DefaultMaxCodeAttempts = 5
	// MinCodeKeyLen is the shortest CodeKey New accepts, in bytes.
	MinCodeKeyLen = 32
	// CodeDigits is the length of an approval code.
	CodeDigits = 6
)

// Folder names under Config.Dir, and their modes (quarantine 700, active
// 755, deprecated 700).
const (
	QuarantineDir = "quarantine"
	ActiveDir     = "active"
	DeprecatedDir = "deprecated"
)

// Config configures a Manager. Zero durations and counts mean the
// defaults above.
type Config struct {
	// Dir is the skills root; it holds quarantine/, active/ and
	// deprecated/. Required.
	Dir string
	// CodeKey keys the hash under which approval codes are stored: at
	// least MinCodeKeyLen random bytes, kept secret (TALOS_HMAC_KEY).
	CodeKey []byte
	// MinCleanRuns is how many clean runs promotion needs.
	MinCleanRuns int
	// MinAge is how long after it was added a skill may be promoted.
	MinAge time.Duration
	// FailureWindow is how long a failed run blocks promotion.
	FailureWindow time.Duration
	// ApprovalTTL is how long an approval code stays valid.
	ApprovalTTL time.Duration
	// MaxCodeAttempts is how many wrong codes reject a request.
	MaxCodeAttempts int
	// ReservedIDs are skill ids that belong to the built-in (genesis)
	// skills: Add refuses them, so no other skill can take a built-in
	// skill's name or its active folder. AdmitGenesis is not affected.
	ReservedIDs []string
	// Logger receives the lifecycle's operational records; nil discards.
	Logger *slog.Logger
}

// Manager moves skills through quarantine: it adds them, records scans
// and sandboxed runs, decides eligibility, sends approval codes and
// promotes. It is safe for concurrent use; every change goes through the
// Store, so several processes may share one.
type Manager struct {
	cfg      Config
	store    Store
	notifier Notifier
	log      *slog.Logger
}

// New returns a Manager keeping records in store and sending approval codes
// through notifier. Every problem with cfg is reported at once (code T010).
func New(cfg Config, store Store, notifier Notifier) (*Manager, error) {
	var p []string
	if cfg.Dir == "" {
		p = append(p, "Dir is empty: give the skills folder (TALOS_HOME/skills)")
	} else if !filepath.IsAbs(cfg.Dir) {
		p = append(p, fmt.Sprintf("Dir \"%s\": want an absolute path", clip(cfg.Dir, 80)))
	}
	if len(cfg.CodeKey) < MinCodeKeyLen {
		p = append(p, fmt.Sprintf("CodeKey: %d bytes, want at least %d random bytes (TALOS_HMAC_KEY)", len(cfg.CodeKey), MinCodeKeyLen))
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"MinAge", cfg.MinAge}, {"FailureWindow", cfg.FailureWindow}, {"ApprovalTTL", cfg.ApprovalTTL}} {
		if d.v < 0 {
			p = append(p, fmt.Sprintf("%s %v: want 0 (the default) or more", d.name, d.v))
		}
	}
	if cfg.MinCleanRuns < 0 || cfg.MinCleanRuns > 100 {
		p = append(p, fmt.Sprintf("MinCleanRuns %d: want 0 (the default, %d) to 100", cfg.MinCleanRuns, DefaultMinCleanRuns))
	}
	if cfg.MaxCodeAttempts < 0 || cfg.MaxCodeAttempts > 10 {
		p = append(p, fmt.Sprintf("MaxCodeAttempts %d: want 0 (the default, %d) to 10", cfg.MaxCodeAttempts, DefaultMaxCodeAttempts))
	}
	if store == nil {
		p = append(p, "store is nil")
	}
	if notifier == nil {
		p = append(p, "notifier is nil: approval codes must reach a person")
	}
	if len(p) > 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "quarantine.New", "%s", strings.Join(p, "; "))
	}
	if cfg.MinCleanRuns == 0 {
		cfg.MinCleanRuns = DefaultMinCleanRuns
	}
	if cfg.MinAge == 0 {
		cfg.MinAge = DefaultMinAge
	}
	if cfg.FailureWindow == 0 {
		cfg.FailureWindow = DefaultFailureWindow
	}
	if cfg.ApprovalTTL == 0 {
		cfg.ApprovalTTL = DefaultApprovalTTL
	}
	if cfg.MaxCodeAttempts == 0 {
		cfg.MaxCodeAttempts = DefaultMaxCodeAttempts
	}
	cfg.CodeKey = append([]byte(nil), cfg.CodeKey...)
	cfg.ReservedIDs = slices.Clone(cfg.ReservedIDs)
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, store: store, notifier: notifier, log: log}, nil
}

func checkActor(op, actor string) error {
	if actor == "" || len(actor) > 128 || hasControl(actor, false) {
		return talos.Errorf(talos.CodePolicyDenied, op, "actor \"%s\": want who acts, 1–128 characters without control characters, such as \"user:alice\" or \"system\"", clip(actor, 40))
	}
	return nil
}

func (m *Manager) dir(name string) string { return filepath.Join(m.cfg.Dir, name) }

// Add copies the skill folder src into quarantine, parses its manifest and
// creates a pending record for its (id, version, content hash). The copy is
// what is hashed, scanned, run and promoted, so later edits of src change
// nothing. Adding content that already has a record returns that record
// unchanged: re-importing, moving or renaming a folder never raises (or
// resets) trust.
func (m *Manager) Add(ctx context.Context, src string, source Source, actor string) (Record, error) {
	const op = "quarantine.Manager.Add"
	if err := checkActor(op, actor); err != nil {
		return Record{}, err
	}
	if !source.Type.Valid() {
		return Record{}, talos.Errorf(talos.CodePolicyDenied, op, "source type \"%s\": want %s", clip(string(source.Type), 40), sourceTypesText())
	}
	if source.Origin == "" || len(source.Origin) > 256 || hasControl(source.Origin, false) {
		return Record{}, talos.Errorf(talos.CodePolicyDenied, op, "source origin \"%s\": want 1–256 characters without control characters (model, user or import source)", clip(source.Origin, 40))
	}
	qdir := m.dir(QuarantineDir)
	staging := filepath.Join(qdir, tmpPrefix+"add-"+randomHex(8))
	c, err := copySkill(op, src, staging, 0o700, 0o600)
	if err != nil {
		return Record{}, err
	}
	defer os.RemoveAll(staging) // gone once renamed
	man, err := ReadManifest(staging)
	if err != nil {
		return Record{}, err
	}
	entryFound := false
	for _, f := range c.Files {
		entryFound = entryFound || f.Path == man.Entry
	}
	if !entryFound {
		return Record{}, talos.Errorf(talos.CodeSkillSyntax, op, "%s names entry \"%s\", which is not a file in the skill's folder: add it or fix entry", ManifestName, clip(man.Entry, 80))
	}
	if slices.Contains(m.cfg.ReservedIDs, man.ID) {
		return Record{}, talos.Errorf(talos.CodePolicyDenied, op, "skill id \"%s\" is reserved for a built-in skill: give the skill another id", man.ID)
	}
	key := Key{ID: man.ID, Version: man.Version, Hash: c.Hash}
	final := filepath.Join(qdir, fmt.Sprintf("%s-%s-%s", key.ID, key.Version, key.Hash[:16]))
	if err := os.Rename(staging, final); err != nil {
		// The same content was added before: keep the first copy if it
		// is intact.
		prev, herr := HashDir(final)
		if herr != nil || prev.Hash != key.Hash {
			return Record{}, talos.E(talos.CodeBadSignature, op, "quarantine folder "+final+" exists with other content: it was changed on disk; remove it and add the skill again", err)
		}
	}
	now := time.Now().UTC()
	rec := Record{Key: key, State: StatePending, Language: man.Language, Entry: man.Entry, Source: source, Path: final,
		SizeBytes: c.Size, CreatedAt: now, UpdatedAt: now, Scan: ScanNotRun}
	err = m.store.Create(ctx, rec, AuditEntry{Actor: actor, Event: "added", To: StatePending,
		Reason: fmt.Sprintf("%d files, %d bytes, from %s %s", len(c.Files), c.Size, source.Type, clip(source.Origin, 80))})
	if errors.Is(err, ErrExists) {
		return m.store.Get(ctx, key)
	}
	if err != nil {
		return Record{}, err
	}
	m.log.InfoContext(ctx, "skill added to quarantine", "skill", key.String(), "actor", actor, "files", len(c.Files), "bytes", c.Size)
	return rec, nil
}

// ReadManifest reads and parses dir/skill.yaml (see ParseManifest). The
// file is opened inside dir (a link out of it is refused) and must be a
// regular file.
func ReadManifest(dir string) (*Manifest, error) {
	const op = "quarantine.ReadManifest"
	f, err := os.OpenInRoot(dir, ManifestName)
	if err != nil {
		return nil, talos.E(talos.CodeSkillSyntax, op, "the skill folder "+clip(dir, 120)+" has no "+ManifestName+" at its top: add one (id, version, language, entry)", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil, talos.Errorf(talos.CodeSkillSyntax, op, "%s in %s is not a regular file", ManifestName, clip(dir, 120))
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxManifestBytes+1))
	if err != nil {
		return nil, talos.E(talos.CodeSkillSyntax, op, "cannot read "+ManifestName+" in "+clip(dir, 120), err)
	}
	return ParseManifest(data)
}

// Manifest returns the parsed manifest of key's quarantined copy, after
// checking that the copy still hashes to key's hash (code T402 if not).
// The sandbox reads the declared capabilities from it.
func (m *Manager) Manifest(ctx context.Context, key Key) (*Manifest, error) {
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	if err := integrity("quarantine.Manager.Manifest", rec); err != nil {
		return nil, err
	}
	return ReadManifest(rec.Path)
}

// Get returns the record of key.
func (m *Manager) Get(ctx context.Context, key Key) (Record, error) { return m.store.Get(ctx, key) }

// List returns the records f selects, oldest first.
func (m *Manager) List(ctx context.Context, f Filter) ([]Record, error) { return m.store.List(ctx, f) }

// Audit returns the audit trail of key, oldest first.
func (m *Manager) Audit(ctx context.Context, key Key) ([]AuditEntry, error) {
	return m.store.Audit(ctx, key)
}

// Verify checks the whole audit chain of the store.
func (m *Manager) Verify(ctx context.Context) (AuditHead, error) { return m.store.Verify(ctx) }

// transition moves key by event inside one store update, after check (if
// not nil) accepted the current record; change may edit the record further.
func (m *Manager) transition(ctx context.Context, key Key, ev Event, actor, reason string, change func(*Record) error) (Record, error) {
	return m.store.Update(ctx, key, func(r *Record) (AuditEntry, error) {
		to, err := Next(r.State, ev)
		if err != nil {
			var te *talos.Error
			if errors.As(err, &te) {
				return AuditEntry{}, talos.Errorf(talos.CodePolicyDenied, "quarantine", "%s: %s", key, te.Message)
			}
			return AuditEntry{}, err
		}
		if change != nil {
			if err := change(r); err != nil {
				return AuditEntry{}, err
			}
		}
		from := r.State
		r.State, r.UpdatedAt = to, time.Now().UTC()
		return AuditEntry{Actor: actor, Event: string(ev), From: from, To: to, Reason: reason}, nil
	})
}

// integrity hashes the quarantined copy of rec and returns a T402 error if
// it no longer matches the record's hash.
func integrity(op string, rec Record) error {
	c, err := HashDir(rec.Path)
	if err != nil {
		return talos.E(talos.CodeBadSignature, op, "the quarantined files of "+rec.Key.String()+" cannot be read; they were changed or removed", err)
	}
	if c.Hash != rec.Hash {
		return talos.Errorf(talos.CodeBadSignature, op, "the quarantined files of %s changed after they were added (hash now %s): tampering suspected; add the skill again as a new version", rec.Key, c.Hash[:12])
	}
	return nil
}

// failOnTamper records a failed integrity check: the record moves to
// failed (or rejected when it awaits promotion) and the check's error is
// returned.
func (m *Manager) failOnTamper(ctx context.Context, rec Record, actor string, cause error) error {
	ev := EventFail
	if rec.State == StateAwaitingPromotion {
		ev = EventReject
	}
	_, err := m.transition(ctx, rec.Key, ev, actor, "files changed on disk: "+clip(cause.Error(), 200), func(r *Record) error {
		if r.Approval != nil && (r.Approval.Status == ApprovalPending || r.Approval.Status == ApprovalApproved) {
			r.Approval.Status = ApprovalRejected
			r.Approval.DecidedAt, r.Approval.DecidedBy = time.Now().UTC(), actor
		}
		return nil
	})
	if err != nil {
		m.log.ErrorContext(ctx, "cannot record tampered skill", "skill", rec.Key.String(), "err", err)
	}
	m.log.WarnContext(ctx, "quarantined skill files changed", "skill", rec.Key.String())
	return cause
}

// Scan statically scans the quarantined copy of key (a pending or passed
// record) and records the outcome. A scan with a critical or high finding
// moves the record to failed and returns an error (code T305) listing
// them; the report is returned either way.
func (m *Manager) Scan(ctx context.Context, key Key, actor string) (Report, Record, error) {
	const op = "quarantine.Manager.Scan"
	if err := checkActor(op, actor); err != nil {
		return Report{}, Record{}, err
	}
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		return Report{}, Record{}, err
	}
	if rec.State != StatePending && rec.State != StatePassed {
		return Report{}, rec, talos.Errorf(talos.CodePolicyDenied, op, "%s is %s: only pending or passed skills are scanned", key, rec.State)
	}
	man, err := ReadManifest(rec.Path)
	if err != nil {
		return Report{}, rec, m.failOnTamper(ctx, rec, actor, err)
	}
	rep, err := ScanDir(rec.Path, man)
	if err != nil {
		return rep, rec, m.failOnTamper(ctx, rec, actor, err)
	}
	if rep.Hash != key.Hash {
		return rep, rec, m.failOnTamper(ctx, rec, actor, talos.Errorf(talos.CodeBadSignature, op, "the quarantined files of %s changed after they were added: tampering suspected", key))
	}
	now := time.Now().UTC()
	if rep.Passed() {
		rec, err = m.store.Update(ctx, key, func(r *Record) (AuditEntry, error) {
			if r.State != StatePending && r.State != StatePassed {
				return AuditEntry{}, talos.Errorf(talos.CodePolicyDenied, op, "%s became %s during the scan", key, r.State)
			}
			r.Scan, r.ScannedAt, r.UpdatedAt = ScanPassed, now, now
			return AuditEntry{Actor: actor, Event: "scanned", From: r.State, To: r.State, Reason: fmt.Sprintf("passed with %d finding(s), none critical or high", len(rep.Findings))}, nil
		})
		return rep, rec, err
	}
	var msgs []string
	for _, f := range rep.Blocking() {
		msgs = append(msgs, f.String())
	}
	reason := "scan failed: " + strings.Join(msgs, "; ")
	rec, err = m.transition(ctx, key, EventFail, actor, clip(reason, 1000), func(r *Record) error {
		r.Scan, r.ScannedAt = ScanFailed, now
		return nil
	})
	if err != nil {
		return rep, rec, err
	}
	m.log.WarnContext(ctx, "skill failed its scan", "skill", key.String(), "blocking", len(msgs))
	return rep, rec, talos.Errorf(talos.CodeSkillScanRejected, op, "%s failed its scan with %d critical or high finding(s): %s; fix them and add the skill again as a new version", key, len(msgs), clip(strings.Join(msgs, "; "), 600))
}

// StartRun marks key as running in the sandbox and returns the record,
// whose Path and Entry say what to run. The record must have passed its
// scan and its files must still hash to its hash; a changed file moves it
// to failed and returns an error (code T402).
func (m *Manager) StartRun(ctx context.Context, key Key, actor string) (Record, error) {
	const op = "quarantine.Manager.StartRun"
	if err := checkActor(op, actor); err != nil {
		return Record{}, err
	}
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		return Record{}, err
	}
	if rec.Scan != ScanPassed {
		return rec, talos.Errorf(talos.CodeSkillScanRejected, op, "%s has not passed a scan (scan %s): scan it before it runs", key, rec.Scan)
	}
	if rec.State == StatePending || rec.State == StatePassed {
		if err := integrity(op, rec); err != nil {
			return rec, m.failOnTamper(ctx, rec, actor, err)
		}
	}
	return m.transition(ctx, key, EventStartRun, actor, fmt.Sprintf("run %d", rec.CleanRuns+rec.FailedRuns+1), func(r *Record) error {
		if r.Scan != ScanPassed {
			return talos.Errorf(talos.CodeSkillScanRejected, op, "%s has not passed a scan", key)
		}
		return nil
	})
}

// RunResult is the verdict of one sandboxed run.
type RunResult struct {
	Passed bool
	// Reason says what happened: exit status, limit hit, exception.
	Reason string
}

// FinishRun records the verdict of the run StartRun began: a clean run
// moves the record to passed and counts towards promotion; a failed run
// moves it to failed.
func (m *Manager) FinishRun(ctx context.Context, key Key, actor string, res RunResult) (Record, error) {
	const op = "quarantine.Manager.FinishRun"
	if err := checkActor(op, actor); err != nil {
		return Record{}, err
	}
	reason := clip(res.Reason, 1000)
	if res.Passed {
		return m.transition(ctx, key, EventRunPassed, actor, reason, func(r *Record) error { r.CleanRuns++; return nil })
	}
	return m.transition(ctx, key, EventFail, actor, "run failed: "+reason, func(r *Record) error {
		r.FailedRuns++
		r.LastFailureAt = time.Now().UTC()
		return nil
	})
}

// InterruptRun records that the run StartRun began ended without a
// verdict (the daemon stopped, the engine went away): the record goes back
// to pending and the run counts neither way.
func (m *Manager) InterruptRun(ctx context.Context, key Key, actor, reason string) (Record, error) {
	if err := checkActor("quarantine.Manager.InterruptRun", actor); err != nil {
		return Record{}, err
	}
	return m.transition(ctx, key, EventInterrupt, actor, clip(reason, 1000), nil)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// newCode returns CodeDigits decimal digits from the CSPRNG.
func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic("crypto/rand failed: " + err.Error()) // crypto/rand does not fail on supported systems
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// codeHash is the keyed hash stored in place of a code, bound to the
// record so it cannot be moved to another one.
func (m *Manager) codeHash(key Key, code string) string {
	h := hmac.New(sha256.New, m.cfg.CodeKey)
	io.WriteString(h, "talos-approval-v1\x00"+key.Subject()+"\x00"+code)
	return hex.EncodeToString(h.Sum(nil))
}
