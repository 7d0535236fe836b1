package strikes

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/talos-ironclad/talos"
)

// Type is the kind of failure a strike records.
type Type string

// The strike types.
const (
	Exception Type = "unhandled_exception" // the skill raised and did not handle an exception
	Timeout   Type = "timeout"             // the skill ran past its wall-clock limit
	Resource  Type = "resource_violation"  // the skill hit its memory, pids or output limit
	Security  Type = "security_violation"  // the skill tried to break out of its sandbox; never expires
)

// Valid reports whether t is one of the four strike types.
func (t Type) Valid() bool {
	switch t {
	case Exception, Timeout, Resource, Security:
		return true
	}
	return false
}

// Status is where a strike stands.
type Status string

// The strike statuses.
const (
	Active     Status = "active"     // counts towards the threshold
	Expired    Status = "expired"    // older than Config.Expiry; no longer counts
	Overturned Status = "overturned" // reset by a promotion or an operator; no longer counts
)

// Defaults of Config, from the spec's strike configuration.
const (
	DefaultThreshold   = 3                   // STRIKE_THRESHOLD: active strikes that deprecate a skill
	DefaultExpiry      = 30 * 24 * time.Hour // strikes older than this stop counting (never security ones)
	DefaultDedupWindow = 24 * time.Hour      // the same normalised exception within this counts once
	DefaultMaxMessage  = 1000                // characters of the exception message kept
	MinKeyLen          = 32                  // bytes of HMAC key New requires
	MaxThreshold       = 10                  // highest Threshold New accepts
)

// Skill identifies the code a strike is against: its id, its version and
// the SHA-256 content hash of its files (64 lower-case hex digits).
type Skill struct {
	ID      string
	Version string
	Hash    string
}

// String returns "id@version".
func (s Skill) String() string { return s.ID + "@" + s.Version }

// Failure is what went wrong in one run of a skill.
type Failure struct {
	Type          Type   // required
	ExceptionType string // the exception's class, "Timeout", "MemoryError", …; required
	Message       string // kept up to Config.MaxMessage characters
	ExecutionID   string // the sandbox run, if known
	SessionID     string // the conversation, if known
	ContainerID   string // the container, if known
}

// Strike is one recorded failure.
type Strike struct {
	Skill         Skill
	Number        int // 1, 2, 3, … per skill id and version, never reused
	Type          Type
	ExceptionType string
	Message       string
	ExceptionHash string // SHA-256 of the type and the normalised message
	ExecutionID   string
	SessionID     string
	ContainerID   string
	OccurredAt    time.Time // UTC
	ExpiresAt     time.Time // UTC; zero for a security strike, which never expires
	Status        Status
	Signature     string // HMAC-SHA256 over the canonical encoding, hex
}

// Deprecation records that a skill was taken out of service.
type Deprecation struct {
	Skill       Skill
	At          time.Time
	By          string // "strike_system" or the operator
	Numbers     []int  // the active strikes that caused it
	FinalType   string // the last strike's exception type
	FinalReason string // the last strike's message
}

// Event is one entry for the audit chain.
type Event struct {
	Actor string // "strike_system", "operator:NAME", …
	Name  string // "strike_recorded", "strike_expired", "strike_overturned", "skill_deprecated"
	Data  map[string]any
}

// StatusChange sets the status of one strike, named by skill id, version
// and number.
type StatusChange struct {
	SkillID, Version string
	Number           int
	Status           Status
}

// State is what a Store holds about a skill when Update calls its function.
type State struct {
	Strikes    []Strike     // for the skill's id and version, and for its content hash; by time
	Deprecated *Deprecation // nil unless the id and version were deprecated
}

// Change is what Update's function asks the store to apply, all or nothing.
type Change struct {
	Add       *Strike
	Statuses  []StatusChange
	Deprecate *Deprecation
	Audit     []Event // appended to the audit chain, subject the skill
}

// Store keeps strikes, deprecations and the audit chain.
type Store interface {
	// Update loads the State of skill — strikes recorded for its id and
	// version or for its content hash — and applies the Change fn returns
	// in one transaction. Updates of every skill are serialised, across
	// processes too, so fn sees every change committed before it. An error
	// from fn applies nothing and is returned as it is.
	Update(ctx context.Context, skill Skill, fn func(State) (Change, error)) error
	// State returns what Update's function would see.
	State(ctx context.Context, skill Skill) (State, error)
	// All returns every strike of every skill, oldest first, for Verify.
	All(ctx context.Context) ([]Strike, error)
	// VerifyAudit checks the audit chain and returns how many entries it has.
	VerifyAudit(ctx context.Context) (int64, error)
}

// Deprecator takes a deprecated skill out of service: moves its files out
// of the active folder and tells whoever runs skills. It is called after the
// deprecation is committed, and again by Tracker.Reconcile.
type Deprecator interface {
	Deprecate(ctx context.Context, d Deprecation) error
}

// Config tunes a Tracker. Zero fields take the defaults above; Key is
// required.
type Config struct {
	Threshold   int           // active strikes that deprecate a skill, 1–10; default 3
	Expiry      time.Duration // default 30 days
	DedupWindow time.Duration // default 24 h
	MaxMessage  int           // default 1000 characters
	Key         []byte        // HMAC key for strike signatures, at least 32 bytes
	Logger      *slog.Logger  // receives deprecation records; nil discards
}

// Result says what Record did.
type Result struct {
	Recorded   bool   // false when the failure duplicated an active strike
	Reason     string // why not recorded: "duplicate_exception"
	Strike     Strike // the new strike, or the one it duplicated
	Active     int    // active strikes after the call
	Deprecated bool   // the skill reached the threshold with this strike
}

// Tracker records strikes and deprecates skills that reach the threshold.
type Tracker struct {
	cfg   Config
	store Store
	dep   Deprecator
	log   *slog.Logger
}

// New returns a Tracker over store. dep may be nil (deprecations are then
// only recorded).
func New(cfg Config, store Store, dep Deprecator) (*Tracker, error) {
	var problems []error
	if cfg.Threshold == 0 {
		cfg.Threshold = DefaultThreshold
	}
	if cfg.Threshold < 1 || cfg.Threshold > MaxThreshold {
		problems = append(problems, fmt.Errorf("Threshold %d: want 1–%d (STRIKE_THRESHOLD)", cfg.Threshold, MaxThreshold))
	}
	if cfg.Expiry == 0 {
		cfg.Expiry = DefaultExpiry
	}
	if cfg.Expiry < 0 {
		problems = append(problems, fmt.Errorf("Expiry %v: want a positive duration", cfg.Expiry))
	}
	if cfg.DedupWindow == 0 {
		cfg.DedupWindow = DefaultDedupWindow
	}
	if cfg.DedupWindow < 0 {
		problems = append(problems, fmt.Errorf("DedupWindow %v: want a positive duration", cfg.DedupWindow))
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = DefaultMaxMessage
	}
	if cfg.MaxMessage < 0 {
		problems = append(problems, fmt.Errorf("MaxMessage %d: want a positive number of characters", cfg.MaxMessage))
	}
	if len(cfg.Key) < MinKeyLen {
		problems = append(problems, fmt.Errorf("Key: %d bytes, want at least %d random bytes", len(cfg.Key), MinKeyLen))
	}
	if store == nil {
		problems = append(problems, errors.New("store: nil, want a Store (strikes/sqlstore or strikestest)"))
	}
	if len(problems) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, "strikes.New", errors.Join(problems...).Error(), nil)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg.Key = append([]byte(nil), cfg.Key...)
	return &Tracker{cfg: cfg, store: store, dep: dep, log: log}, nil
}

// Actor of the changes the Tracker makes on its own.
const systemActor = "strike_system"

// Record records f as a strike against skill and deprecates the skill when
// its active strikes reach the threshold. Strikes that expired are marked
// so in the same transaction. A failure whose normalised exception matches
// an active strike of the last 24 hours is not recorded again. A skill
// already deprecated gets no more strikes (T304 error).
func (t *Tracker) Record(ctx context.Context, skill Skill, f Failure) (Result, error) {
	const op = "strikes.Record"
	if err := checkInput(skill, f); err != nil {
		return Result{}, talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
	}
	msg := truncate(f.Message, t.cfg.MaxMessage)
	hash := ExceptionHash(f.ExceptionType, msg)
	var res Result
	var dep *Deprecation
	err := t.store.Update(ctx, skill, func(st State) (Change, error) {
		res, dep = Result{}, nil
		if st.Deprecated != nil {
			return Change{}, talos.Errorf(talos.CodeSkillException, op, "%s was deprecated at %s after %d strikes: it takes no more strikes",
				skill, st.Deprecated.At.Format(time.RFC3339), len(st.Deprecated.Numbers))
		}
		now := time.Now().UTC()
		ch := t.expire(st.Strikes, now)
		active := activeOf(st.Strikes, ch.Statuses)
		for _, s := range active {
			if s.ExceptionHash == hash && now.Sub(s.OccurredAt) < t.cfg.DedupWindow {
				res = Result{Reason: "duplicate_exception", Strike: s, Active: len(active)}
				return ch, nil
			}
		}
		number := 1
		for _, s := range st.Strikes {
			if s.Skill.ID == skill.ID && s.Skill.Version == skill.Version && s.Number >= number {
				number = s.Number + 1
			}
		}
		s := Strike{Skill: skill, Number: number, Type: f.Type, ExceptionType: f.ExceptionType, Message: msg,
			ExceptionHash: hash, ExecutionID: f.ExecutionID, SessionID: f.SessionID, ContainerID: f.ContainerID,
			OccurredAt: now, Status: Active}
		if f.Type != Security {
			s.ExpiresAt = now.Add(t.cfg.Expiry)
		}
		s.Signature = t.sign(s)
		ch.Add = &s
		ch.Audit = append(ch.Audit, Event{Actor: systemActor, Name: "strike_recorded", Data: map[string]any{
			"number": s.Number, "type": string(s.Type), "exception_type": s.ExceptionType, "exception_hash": hash,
			"active": len(active) + 1, "content_hash": skill.Hash}})
		res = Result{Recorded: true, Strike: s, Active: len(active) + 1}
		if res.Active >= t.cfg.Threshold {
			d := Deprecation{Skill: skill, At: now, By: systemActor, FinalType: s.ExceptionType, FinalReason: msg}
			for _, a := range active {
				d.Numbers = append(d.Numbers, a.Number)
			}
			d.Numbers = append(d.Numbers, s.Number)
			ch.Deprecate, dep, res.Deprecated = &d, &d, true
			ch.Audit = append(ch.Audit, Event{Actor: systemActor, Name: "skill_deprecated", Data: map[string]any{
				"strikes": d.Numbers, "threshold": t.cfg.Threshold}})
		}
		return ch, nil
	})
	if err != nil {
		if te := (*talos.Error)(nil); errors.As(err, &te) {
			return Result{}, err
		}
		return Result{}, talos.E(talos.CodeSkillException, op, "cannot record a strike against "+skill.String(), err)
	}
	t.log.LogAttrs(ctx, slog.LevelWarn, "strike", slog.String("skill", skill.String()), slog.Bool("recorded", res.Recorded),
		slog.Int("number", res.Strike.Number), slog.String("type", string(f.Type)), slog.Int("active", res.Active), slog.Bool("deprecated", res.Deprecated))
	if dep != nil && t.dep != nil {
		if err := t.dep.Deprecate(ctx, *dep); err != nil {
			return res, talos.E(talos.CodeSkillException, op, skill.String()+" is deprecated but taking it out of service failed; Reconcile retries", err)
		}
	}
	return res, nil
}

// expire returns the status changes and audit events for the active strikes
// that have expired by now.
func (t *Tracker) expire(ss []Strike, now time.Time) Change {
	var ch Change
	for _, s := range ss {
		if s.Status == Active && !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			ch.Statuses = append(ch.Statuses, StatusChange{s.Skill.ID, s.Skill.Version, s.Number, Expired})
			ch.Audit = append(ch.Audit, Event{Actor: systemActor, Name: "strike_expired", Data: map[string]any{
				"skill": s.Skill.String(), "number": s.Number}})
		}
	}
	return ch
}

// activeOf returns the strikes of ss still active after changes.
func activeOf(ss []Strike, changes []StatusChange) []Strike {
	var out []Strike
	for _, s := range ss {
		st := s.Status
		for _, c := range changes {
			if c.SkillID == s.Skill.ID && c.Version == s.Skill.Version && c.Number == s.Number {
				st = c.Status
			}
		}
		if st == Active {
			out = append(out, s)
		}
	}
	return out
}

// Active returns the strikes of skill that count towards the threshold now.
func (t *Tracker) Active(ctx context.Context, skill Skill) ([]Strike, error) {
	st, err := t.store.State(ctx, skill)
	if err != nil {
		return nil, talos.E(talos.CodeSkillException, "strikes.Active", "cannot read the strikes of "+skill.String(), err)
	}
	now := time.Now()
	var out []Strike
	for _, s := range st.Strikes {
		if s.Status == Active && (s.ExpiresAt.IsZero() || now.Before(s.ExpiresAt)) {
			out = append(out, s)
		}
	}
	return out, nil
}

// Reset overturns the active strikes of skill, as a promotion or an
// operator's override does, and returns how many. Security strikes are never
// reset, and a deprecated skill's strikes stay as they are (error T304).
func (t *Tracker) Reset(ctx context.Context, skill Skill, actor, reason string) (int, error) {
	const op = "strikes.Reset"
	if strings.TrimSpace(actor) == "" || strings.TrimSpace(reason) == "" {
		return 0, talos.Errorf(talos.CodeConfigInvalid, op, "actor %q and reason %q: both are required for the audit record", clip(actor), clip(reason))
	}
	n := 0
	err := t.store.Update(ctx, skill, func(st State) (Change, error) {
		n = 0
		if st.Deprecated != nil {
			return Change{}, talos.Errorf(talos.CodeSkillException, op, "%s is deprecated: its strikes cannot be reset", skill)
		}
		ch := t.expire(st.Strikes, time.Now().UTC())
		for _, s := range activeOf(st.Strikes, ch.Statuses) {
			if s.Type == Security {
				continue
			}
			n++
			ch.Statuses = append(ch.Statuses, StatusChange{s.Skill.ID, s.Skill.Version, s.Number, Overturned})
			ch.Audit = append(ch.Audit, Event{Actor: actor, Name: "strike_overturned", Data: map[string]any{
				"skill": s.Skill.String(), "number": s.Number, "reason": reason}})
		}
		return ch, nil
	})
	if err != nil {
		if te := (*talos.Error)(nil); errors.As(err, &te) {
			return 0, err
		}
		return 0, talos.E(talos.CodeSkillException, op, "cannot reset the strikes of "+skill.String(), err)
	}
	return n, nil
}

// ExpireAll marks every active strike past its expiry as expired (with its
// audit entry), skill by skill, and returns how many it marked. Record and
// Reset do the same for their skill; ExpireAll is the nightly sweep, so a
// skill that never fails again does not keep stale active strikes on
// record. Security strikes never expire.
func (t *Tracker) ExpireAll(ctx context.Context) (int, error) {
	const op = "strikes.ExpireAll"
	all, err := t.store.All(ctx)
	if err != nil {
		return 0, talos.E(talos.CodeSkillException, op, "cannot read the strikes", err)
	}
	now := time.Now().UTC()
	due := map[Skill]bool{}
	for _, s := range all {
		if s.Status == Active && !s.ExpiresAt.IsZero() && !now.Before(s.ExpiresAt) {
			due[s.Skill] = true
		}
	}
	n := 0
	for skill := range due {
		err := t.store.Update(ctx, skill, func(st State) (Change, error) {
			ch := t.expire(st.Strikes, time.Now().UTC())
			n += len(ch.Statuses)
			return ch, nil
		})
		if err != nil {
			return n, talos.E(talos.CodeSkillException, op, "cannot expire the strikes of "+skill.String(), err)
		}
	}
	return n, nil
}

// Reconcile calls the Deprecator again for skill if it is deprecated, for
// a deprecation whose files were not moved (a crash or an error after the
// commit). It is idempotent when the Deprecator is.
func (t *Tracker) Reconcile(ctx context.Context, skill Skill) error {
	st, err := t.store.State(ctx, skill)
	if err != nil {
		return talos.E(talos.CodeSkillException, "strikes.Reconcile", "cannot read "+skill.String(), err)
	}
	if st.Deprecated == nil || t.dep == nil {
		return nil
	}
	return t.dep.Deprecate(ctx, *st.Deprecated)
}

// Report is what Verify found.
type Report struct {
	Strikes      int   // strikes whose signature was checked
	AuditEntries int64 // entries of the audit chain checked
}

// Verify checks the signature of every strike and the whole audit chain.
// The first strike whose content does not match its signature (an edited
// type, time, message hash or number) is named in the error (T402).
func (t *Tracker) Verify(ctx context.Context) (Report, error) {
	const op = "strikes.Verify"
	var r Report
	// The audit chain is verified while the strikes are read and checked.
	type audit struct {
		n   int64
		err error
	}
	done := make(chan audit, 1)
	go func() {
		n, err := t.store.VerifyAudit(ctx)
		done <- audit{n, err}
	}()
	all, err := t.store.All(ctx)
	if err != nil {
		<-done
		return r, talos.E(talos.CodeSkillException, op, "cannot read the strikes", err)
	}
	mac := hmac.New(sha256.New, t.cfg.Key)
	var sum [sha256.Size]byte
	var want [2 * sha256.Size]byte
	for _, s := range all {
		mac.Reset()
		mac.Write([]byte(Canonical(s)))
		hex.Encode(want[:], mac.Sum(sum[:0]))
		if !hmac.Equal(want[:], []byte(s.Signature)) {
			<-done
			return r, talos.Errorf(talos.CodeBadSignature, op, "strike %d of %s does not match its signature: it was edited or forged", s.Number, s.Skill)
		}
		r.Strikes++
	}
	a := <-done
	r.AuditEntries = a.n
	return r, a.err
}

// Canonical returns the text a strike's signature covers:
// "id:version:content-hash:number:type:occurred-at:exception-hash:expires-at"
// with both times in RFC 3339 UTC with nanoseconds (expires-at empty for a
// strike that never expires).
func Canonical(s Strike) string {
	exp := ""
	if !s.ExpiresAt.IsZero() {
		exp = s.ExpiresAt.UTC().Format(time.RFC3339Nano)
	}
	return strings.Join([]string{s.Skill.ID, s.Skill.Version, s.Skill.Hash, strconv.Itoa(s.Number), string(s.Type),
		s.OccurredAt.UTC().Format(time.RFC3339Nano), s.ExceptionHash, exp}, ":")
}

func (t *Tracker) sign(s Strike) string {
	m := hmac.New(sha256.New, t.cfg.Key)
	m.Write([]byte(Canonical(s)))
	return hex.EncodeToString(m.Sum(nil))
}

var (
	uuidRE = regexp.MustCompile(`(?i)[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	timeRE = regexp.MustCompile(`\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})?`)
	addrRE = regexp.MustCompile(`0x[0-9a-fA-F]+`)
)

// Normalize replaces what differs between two runs of the same failure —
// UUIDs (any case), timestamps and hex addresses — with <UUID>, <TIMESTAMP>
// and <ADDR>, in that order.
func Normalize(msg string) string {
	msg = uuidRE.ReplaceAllString(msg, "<UUID>")
	msg = timeRE.ReplaceAllString(msg, "<TIMESTAMP>")
	return addrRE.ReplaceAllString(msg, "<ADDR>")
}

// ExceptionHash returns hex(SHA-256("type:normalised message")), the key
// that makes the same exception count once.
func ExceptionHash(exceptionType, msg string) string {
	sum := sha256.Sum256([]byte(exceptionType + ":" + Normalize(msg)))
	return hex.EncodeToString(sum[:])
}

var (
	skillID    = regexp.MustCompile(`^[a-z][a-z0-9_]{2,63}$`)
	semver     = regexp.MustCompile(`^\d{1,9}\.\d{1,9}\.\d{1,9}$`)
	sha256Hex  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]{0,127}$`)
)

func checkInput(s Skill, f Failure) error {
	var problems []error
	if !skillID.MatchString(s.ID) {
		problems = append(problems, fmt.Errorf("skill id \"%s\": want 3–64 of a-z, 0-9, '_', starting with a letter", clip(s.ID)))
	}
	if !semver.MatchString(s.Version) {
		problems = append(problems, fmt.Errorf("skill version \"%s\": want MAJOR.MINOR.PATCH digits", clip(s.Version)))
	}
	if !sha256Hex.MatchString(s.Hash) {
		problems = append(problems, fmt.Errorf("skill hash \"%s\": want the 64 lower-case hex digits of the content hash", clip(s.Hash)))
	}
	if !f.Type.Valid() {
		problems = append(problems, fmt.Errorf("failure type \"%s\": want %s, %s, %s or %s", clip(string(f.Type)), Exception, Timeout, Resource, Security))
	}
	if !identifier.MatchString(f.ExceptionType) {
		problems = append(problems, fmt.Errorf("exception type \"%s\": want 1–128 of letters, digits, '_', '.'", clip(f.ExceptionType)))
	}
	return errors.Join(problems...)
}

// truncate keeps the first n characters of s, on a character boundary,
// with invalid UTF-8 replaced.
func truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	i, c := 0, 0
	for i = range s {
		if c == n {
			break
		}
		c++
	}
	return s[:i]
}

// clip shortens s for a message and escapes control characters.
func clip(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "…"
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
