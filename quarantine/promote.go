package quarantine

import (
	"context"
	"crypto/hmac"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
)

// Eligibility is the outcome of each promotion check of one record.
type Eligibility struct {
	Key           Key
	State         State
	CleanRuns     int
	RequiredRuns  int
	ScanPassed    bool
	Age           time.Duration
	MinAge        time.Duration
	LastFailureAt time.Time // zero when no run failed
	HashMatches   bool      // the quarantined files still hash to Key.Hash
	// Problems says, one line each, why the record is not eligible.
	Problems []string
}

// Eligible reports whether every check passed.
func (e Eligibility) Eligible() bool { return len(e.Problems) == 0 }

// Eligibility checks whether key may be promoted: it has passed (state
// passed), has the configured number of clean runs, passed its scan, is at
// least MinAge old, had no failed run within FailureWindow, its quarantined
// files still hash to its hash, and no other content of the same id and
// version is promoted or awaiting promotion.
func (m *Manager) Eligibility(ctx context.Context, key Key) (Eligibility, error) {
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		return Eligibility{}, err
	}
	return m.eligibility(ctx, rec, StatePassed)
}

func (m *Manager) eligibility(ctx context.Context, rec Record, wantState State) (Eligibility, error) {
	now := time.Now()
	e := Eligibility{Key: rec.Key, State: rec.State, CleanRuns: rec.CleanRuns, RequiredRuns: m.cfg.MinCleanRuns,
		ScanPassed: rec.Scan == ScanPassed, Age: now.Sub(rec.CreatedAt), MinAge: m.cfg.MinAge, LastFailureAt: rec.LastFailureAt}
	if rec.State != wantState {
		e.Problems = append(e.Problems, fmt.Sprintf("state is %s, want %s", rec.State, wantState))
	}
	if rec.CleanRuns < m.cfg.MinCleanRuns {
		e.Problems = append(e.Problems, fmt.Sprintf("%d clean run(s), want %d", rec.CleanRuns, m.cfg.MinCleanRuns))
	}
	if !e.ScanPassed {
		e.Problems = append(e.Problems, fmt.Sprintf("scan %s, want passed", rec.Scan))
	}
	if e.Age < m.cfg.MinAge {
		e.Problems = append(e.Problems, fmt.Sprintf("in quarantine for %v, want at least %v (eligible from %s)", e.Age.Truncate(time.Second), m.cfg.MinAge, rec.CreatedAt.Add(m.cfg.MinAge).UTC().Format(time.RFC3339)))
	}
	if !rec.LastFailureAt.IsZero() && now.Sub(rec.LastFailureAt) < m.cfg.FailureWindow {
		e.Problems = append(e.Problems, fmt.Sprintf("a run failed at %s, within the last %v", rec.LastFailureAt.UTC().Format(time.RFC3339), m.cfg.FailureWindow))
	}
	if err := integrity("quarantine.Manager.Eligibility", rec); err != nil {
		e.Problems = append(e.Problems, "files changed: "+clip(err.Error(), 200))
	} else {
		e.HashMatches = true
	}
	others, err := m.store.List(ctx, Filter{ID: rec.ID})
	if err != nil {
		return e, err
	}
	for _, o := range others {
		if o.Version == rec.Version && o.Hash != rec.Hash && (o.State == StatePromoted || o.State == StateAwaitingPromotion) {
			e.Problems = append(e.Problems, fmt.Sprintf("other content of %s@%s is %s (%s): give the new content a new version", rec.ID, rec.Version, o.State, o.Key))
		}
	}
	return e, nil
}

// Request is a promotion request as its requester sees it. It never holds
// the code: that goes only to the Notifier.
type Request struct {
	Key         Key
	RequestedBy string
	RequestedAt time.Time
	ExpiresAt   time.Time
	Channel     string // the Notifier's name
}

// RequestPromotion asks a person to approve key. If key is eligible, a
// 6-digit code from the CSPRNG is sent through the Notifier, only its keyed
// hash is stored, and the record moves to awaiting_promotion. The code is
// valid ApprovalTTL; it is never returned, logged or stored in clear. A
// record that is not eligible is refused (code T406) with every reason.
func (m *Manager) RequestPromotion(ctx context.Context, key Key, actor string) (Request, error) {
	const op = "quarantine.Manager.RequestPromotion"
	if err := checkActor(op, actor); err != nil {
		return Request{}, err
	}
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		return Request{}, err
	}
	el, err := m.eligibility(ctx, rec, StatePassed)
	if err != nil {
		return Request{}, err
	}
	if !el.Eligible() {
		return Request{}, talos.Errorf(talos.CodePolicyDenied, op, "%s is not eligible for promotion: %s", key, strings.Join(el.Problems, "; "))
	}
	code := newCode()
	now := time.Now().UTC()
	req := Request{Key: key, RequestedBy: actor, RequestedAt: now, ExpiresAt: now.Add(m.cfg.ApprovalTTL), Channel: m.notifier.Name()}
	// The code goes out before the request is stored: if storing fails the
	// person holds a code for nothing, which is harmless; the other order
	// could store a request nobody can ever approve.
	if err := m.notifier.Notify(ctx, Notice{Key: key, Code: code, ExpiresAt: req.ExpiresAt, RequestedBy: actor}); err != nil {
		return Request{}, talos.E(talos.CodePolicyDenied, op, "cannot deliver the approval code of "+key.String()+" through "+m.notifier.Name()+"; nothing was changed, try again when it works", err)
	}
	hash := m.codeHash(key, code)
	_, err = m.transition(ctx, key, EventRequestPromotion, actor, fmt.Sprintf("code sent through %s, valid until %s", req.Channel, req.ExpiresAt.Format(time.RFC3339)), func(r *Record) error {
		if r.CleanRuns < m.cfg.MinCleanRuns || r.Scan != ScanPassed {
			return talos.Errorf(talos.CodePolicyDenied, op, "%s changed while promotion was requested; check it and ask again", key)
		}
		r.Approval = &Approval{RequestedAt: now, ExpiresAt: req.ExpiresAt, RequestedBy: actor, CodeHash: hash, Status: ApprovalPending}
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	m.log.InfoContext(ctx, "promotion requested", "skill", key.String(), "actor", actor, "channel", req.Channel, "expires", req.ExpiresAt)
	return req, nil
}

// Approve promotes key if code is the one sent for its pending request. A
// wrong code counts against MaxCodeAttempts, after which the request is
// rejected; an expired request is rejected. With the right code the files
// are hashed again (a changed byte rejects the request, code T402) and
// copied to active/<id>-<version>: written under a temporary name and
// renamed, so the folder is either absent or complete. The quarantined
// copy stays where it is, as the record of what was approved. Approving a
// promoted record again changes nothing and returns it. A crash between the
// steps is finished by Reconcile.
func (m *Manager) Approve(ctx context.Context, key Key, code, actor string) (Record, error) {
	const op = "quarantine.Manager.Approve"
	if err := checkActor(op, actor); err != nil {
		return Record{}, err
	}
	rec, err := m.store.Get(ctx, key)
	if err != nil {
		return Record{}, err
	}
	if rec.State == StatePromoted {
		return rec, nil
	}
	var outcome error
	hash := m.codeHash(key, code)
	rec, err = m.store.Update(ctx, key, func(r *Record) (AuditEntry, error) {
		outcome = nil
		now := time.Now().UTC()
		if r.State != StateAwaitingPromotion || r.Approval == nil {
			return AuditEntry{}, talos.Errorf(talos.CodePolicyDenied, op, "%s is %s and has no pending promotion request: request promotion first", key, r.State)
		}
		a := r.Approval
		switch {
		case a.Status == ApprovalApproved:
			// A previous Approve accepted the code and stopped before
			// the copy; finish it.
			return AuditEntry{Actor: actor, Event: "promotion_resumed", From: r.State, To: r.State, Reason: "code accepted earlier"}, nil
		case a.Status != ApprovalPending:
			return AuditEntry{}, talos.Errorf(talos.CodePolicyDenied, op, "the promotion request of %s is %s", key, a.Status)
		case !now.Before(a.ExpiresAt):
			a.Status, a.DecidedAt, a.DecidedBy = ApprovalExpired, now, "system"
			r.State, _ = Next(r.State, EventReject) // awaiting_promotion → rejected
			r.UpdatedAt = now
			outcome = talos.Errorf(talos.CodePolicyDenied, op, "the promotion request of %s expired at %s; the skill is rejected, add it again as a new version", key, a.ExpiresAt.Format(time.RFC3339))
			return AuditEntry{Actor: "system", Event: string(EventReject), From: StateAwaitingPromotion, To: StateRejected, Reason: "approval expired"}, nil
		case !validCode(code) || !hmac.Equal([]byte(hash), []byte(a.CodeHash)):
			a.Attempts++
			left := m.cfg.MaxCodeAttempts - a.Attempts
			if left <= 0 {
				a.Status, a.DecidedAt, a.DecidedBy = ApprovalRejected, now, "system"
				r.State, _ = Next(r.State, EventReject) // awaiting_promotion → rejected
				r.UpdatedAt = now
				outcome = talos.Errorf(talos.CodeUnauthorized, op, "wrong approval code for %s, %d times: the request is rejected; add the skill again as a new version", key, a.Attempts)
				return AuditEntry{Actor: actor, Event: string(EventReject), From: StateAwaitingPromotion, To: StateRejected, Reason: fmt.Sprintf("%d wrong codes", a.Attempts)}, nil
			}
			outcome = talos.Errorf(talos.CodeUnauthorized, op, "wrong approval code for %s: %d tries left", key, left)
			return AuditEntry{Actor: actor, Event: "code_wrong", From: r.State, To: r.State, Reason: fmt.Sprintf("wrong code, %d tries left", left)}, nil
		}
		a.Status, a.DecidedAt, a.DecidedBy = ApprovalApproved, now, actor
		r.UpdatedAt = now
		return AuditEntry{Actor: actor, Event: "code_accepted", From: r.State, To: r.State, Reason: "approval code correct"}, nil
	})
	if err != nil {
		return Record{}, err
	}
	if outcome != nil {
		m.log.WarnContext(ctx, "promotion not approved", "skill", key.String(), "actor", actor, "err", outcome)
		return rec, outcome
	}
	return m.finishPromotion(ctx, rec, actor)
}

func validCode(code string) bool {
	if len(code) != CodeDigits {
		return false
	}
	for _, c := range code {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// ActivePath returns the folder a promoted key is copied to.
func (m *Manager) ActivePath(key Key) string {
	return filepath.Join(m.dir(ActiveDir), key.ID+"-"+key.Version)
}

// finishPromotion copies an approved record to active and moves it to
// promoted. It is idempotent: an active folder that already holds exactly
// the record's content is kept.
func (m *Manager) finishPromotion(ctx context.Context, rec Record, actor string) (Record, error) {
	const op = "quarantine.Manager.Approve"
	reject := func(cause error) (Record, error) {
		return rec, m.failOnTamper(ctx, rec, actor, cause)
	}
	if err := integrity(op, rec); err != nil {
		return reject(err)
	}
	el, err := m.eligibility(ctx, rec, StateAwaitingPromotion)
	if err != nil {
		return rec, err
	}
	for _, p := range el.Problems {
		if strings.HasPrefix(p, "other content") {
			return rec, talos.Errorf(talos.CodePolicyDenied, op, "cannot promote %s: %s", rec.Key, p)
		}
	}
	dst := m.ActivePath(rec.Key)
	if _, err := os.Lstat(dst); err == nil {
		c, herr := HashDir(dst)
		if herr != nil || c.Hash != rec.Hash {
			return rec, talos.E(talos.CodeBadSignature, op, "active folder "+dst+" exists with other content; the skill was not promoted: move that folder away (deprecate the skill it belongs to) and approve again", herr)
		}
	} else {
		c, err := copySkill(op, rec.Path, dst, 0o755, 0o644)
		if err != nil {
			// A concurrent Approve may have renamed its copy into place
			// first; that copy is as good as ours.
			if done, herr := HashDir(dst); herr != nil || done.Hash != rec.Hash {
				return rec, err
			}
			c.Hash = rec.Hash
		}
		if c.Hash != rec.Hash {
			os.RemoveAll(dst)
			return reject(talos.Errorf(talos.CodeBadSignature, op, "the files of %s changed while they were copied: tampering suspected", rec.Key))
		}
	}
	out, err := m.transition(ctx, rec.Key, EventApprove, actor, "promoted to "+dst, func(r *Record) error {
		if r.Approval == nil || r.Approval.Status != ApprovalApproved {
			return talos.Errorf(talos.CodePolicyDenied, op, "the promotion request of %s is not approved", rec.Key)
		}
		r.ActivePath = dst
		return nil
	})
	if err != nil {
		if cur, gerr := m.store.Get(ctx, rec.Key); gerr == nil && cur.State == StatePromoted {
			return cur, nil // a concurrent Approve finished first
		}
		return rec, err
	}
	m.log.InfoContext(ctx, "skill promoted", "skill", rec.Key.String(), "actor", actor, "path", dst)
	return out, nil
}

// Reject refuses key's pending promotion request: the record moves to
// rejected.
func (m *Manager) Reject(ctx context.Context, key Key, actor, reason string) (Record, error) {
	const op = "quarantine.Manager.Reject"
	if err := checkActor(op, actor); err != nil {
		return Record{}, err
	}
	return m.transition(ctx, key, EventReject, actor, clip(reason, 1000), func(r *Record) error {
		if r.Approval != nil {
			r.Approval.Status, r.Approval.DecidedAt, r.Approval.DecidedBy = ApprovalRejected, time.Now().UTC(), actor
		}
		return nil
	})
}

// ExpireApprovals rejects every promotion request older than ApprovalTTL
// that is still pending and returns how many it rejected. Approve checks
// expiry itself; this sweep makes the state visible without one.
func (m *Manager) ExpireApprovals(ctx context.Context) (int, error) {
	recs, err := m.store.List(ctx, Filter{State: StateAwaitingPromotion})
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, rec := range recs {
		if rec.Approval == nil || rec.Approval.Status != ApprovalPending || time.Now().Before(rec.Approval.ExpiresAt) {
			continue
		}
		_, err := m.transition(ctx, rec.Key, EventReject, "system", "approval expired", func(r *Record) error {
			if r.Approval == nil || r.Approval.Status != ApprovalPending || time.Now().Before(r.Approval.ExpiresAt) {
				return errSkip
			}
			r.Approval.Status, r.Approval.DecidedAt, r.Approval.DecidedBy = ApprovalExpired, time.Now().UTC(), "system"
			return nil
		})
		switch {
		case err == nil:
			n++
		case !errors.Is(err, errSkip):
			errs = append(errs, err)
		}
	}
	return n, errors.Join(errs...)
}

var errSkip = errors.New("skip")

// Deprecate takes key out of use: the record moves to deprecated and, if
// it was promoted, its active folder moves to
// deprecated/<id>-<version>-<UTC time>. Strikes call this at their
// threshold.
func (m *Manager) Deprecate(ctx context.Context, key Key, actor, reason string) (Record, error) {
	const op = "quarantine.Manager.Deprecate"
	if err := checkActor(op, actor); err != nil {
		return Record{}, err
	}
	rec, err := m.transition(ctx, key, EventDeprecate, actor, clip(reason, 1000), nil)
	if err != nil {
		return rec, err
	}
	return m.deactivate(ctx, rec, actor)
}

// deactivate moves a deprecated record's active folder out of active.
func (m *Manager) deactivate(ctx context.Context, rec Record, actor string) (Record, error) {
	if rec.ActivePath == "" {
		return rec, nil
	}
	dst := filepath.Join(m.dir(DeprecatedDir), fmt.Sprintf("%s-%s-%s", rec.ID, rec.Version, time.Now().UTC().Format("20060102T150405Z")))
	if err := os.MkdirAll(m.dir(DeprecatedDir), 0o700); err != nil {
		return rec, talos.E(talos.CodeDirPermissions, "quarantine.Manager.Deprecate", "cannot create "+m.dir(DeprecatedDir), err)
	}
	if err := os.Rename(rec.ActivePath, dst); err != nil && !errors.Is(err, os.ErrNotExist) {
		return rec, talos.E(talos.CodeDirPermissions, "quarantine.Manager.Deprecate", "cannot move "+rec.ActivePath+" out of active; Reconcile will try again", err)
	}
	return m.store.Update(ctx, rec.Key, func(r *Record) (AuditEntry, error) {
		r.ActivePath, r.UpdatedAt = "", time.Now().UTC()
		return AuditEntry{Actor: actor, Event: "deactivated", From: r.State, To: r.State, Reason: "active files moved to " + dst}, nil
	})
}

// ReconcileReport says what Reconcile found and did.
type ReconcileReport struct {
	TempRemoved   []string // half-written folders removed
	Expired       int      // promotion requests expired
	Promoted      []Key    // approved promotions finished
	Interrupted   []Key    // runs a stop cut short, back to pending
	Deactivated   []Key    // deprecated skills moved out of active
	ActiveChanged []Key    // promoted skills whose active files no longer hash to their record
}

// Reconcile brings files and records back in line after a crash. Call it at
// start-up, before anything else uses the skills folder or runs a skill (a
// running process calls ReconcileWhileRunning instead):
// it removes half-written folders, sends runs still marked executing back
// to pending, expires old requests, finishes promotions whose
// code was accepted, moves deprecated skills out of active, and reports
// (and logs) promoted skills whose active files changed.
func (m *Manager) Reconcile(ctx context.Context) (ReconcileReport, error) {
	return m.reconcile(ctx, 0)
}

// ReconcileWhileRunning is Reconcile for a process that may be adding or
// running skills at the same time (the nightly check of a running
// daemon): a half-written folder, or a run marked executing, counts as
// left over by a crash only once it has not changed for longer than grace
// (at least the longest a run or an add may take). Younger ones are in
// use, and left alone.
func (m *Manager) ReconcileWhileRunning(ctx context.Context, grace time.Duration) (ReconcileReport, error) {
	if grace <= 0 {
		return ReconcileReport{}, talos.Errorf(talos.CodeConfigInvalid, "quarantine.ReconcileWhileRunning",
			"grace %v: want more than 0, at least the longest a skill run may take", grace)
	}
	return m.reconcile(ctx, grace)
}

// reconcile is Reconcile; with grace > 0, only leftovers older than grace
// are treated as such.
func (m *Manager) reconcile(ctx context.Context, grace time.Duration) (ReconcileReport, error) {
	var rep ReconcileReport
	var errs []error
	cutoff := time.Now().Add(-grace)
	stale := func(t time.Time) bool { return grace == 0 || t.Before(cutoff) }
	for _, d := range []string{QuarantineDir, ActiveDir} {
		entries, err := os.ReadDir(m.dir(d))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), tmpPrefix) {
				p := filepath.Join(m.dir(d), e.Name())
				if grace > 0 {
					if info, err := e.Info(); err != nil || !stale(info.ModTime()) {
						continue // being written now (or gone already)
					}
				}
				if err := os.RemoveAll(p); err != nil {
					errs = append(errs, err)
				} else {
					rep.TempRemoved = append(rep.TempRemoved, p)
				}
			}
		}
	}
	executing, err := m.store.List(ctx, Filter{State: StateExecuting})
	errs = append(errs, err)
	for _, rec := range executing {
		if !stale(rec.UpdatedAt) {
			continue // a run in progress
		}
		if _, err := m.InterruptRun(ctx, rec.Key, "system", "the run was cut short by a stop of Talos"); err != nil {
			errs = append(errs, err)
		} else {
			rep.Interrupted = append(rep.Interrupted, rec.Key)
		}
	}
	n, err := m.ExpireApprovals(ctx)
	rep.Expired = n
	errs = append(errs, err)
	awaiting, err := m.store.List(ctx, Filter{State: StateAwaitingPromotion})
	errs = append(errs, err)
	for _, rec := range awaiting {
		if rec.Approval != nil && rec.Approval.Status == ApprovalApproved {
			if _, err := m.finishPromotion(ctx, rec, "system"); err != nil {
				errs = append(errs, err)
			} else {
				rep.Promoted = append(rep.Promoted, rec.Key)
			}
		}
	}
	deprecated, err := m.store.List(ctx, Filter{State: StateDeprecated})
	errs = append(errs, err)
	for _, rec := range deprecated {
		if rec.ActivePath != "" {
			if _, err := m.deactivate(ctx, rec, "system"); err != nil {
				errs = append(errs, err)
			} else {
				rep.Deactivated = append(rep.Deactivated, rec.Key)
			}
		}
	}
	promoted, err := m.store.List(ctx, Filter{State: StatePromoted})
	errs = append(errs, err)
	for _, rec := range promoted {
		if c, err := HashDir(rec.ActivePath); err != nil || c.Hash != rec.Hash {
			rep.ActiveChanged = append(rep.ActiveChanged, rec.Key)
			m.log.ErrorContext(ctx, "active skill files changed since promotion", "skill", rec.Key.String(), "path", rec.ActivePath)
		}
	}
	return rep, errors.Join(errs...)
}
