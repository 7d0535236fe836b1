package quarantine

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos"
)

// SourceGenesis marks a skill that ships inside the Talos binary, whose
// content hash is pinned at build time and whose pin list carries an
// Ed25519 signature checked against a public key in the binary. Only
// [Manager.AdmitGenesis] creates records with this source; [Manager.Add]
// refuses it.
const SourceGenesis SourceType = "genesis"

// Audit events AdmitGenesis appends besides the state changes.
const (
	// EventGenesisAdmitted: a genesis skill was admitted straight to
	// promoted (from "" to promoted).
	EventGenesisAdmitted = "genesis_admitted"
	// EventGenesisRefused: the active copy of a genesis skill on disk
	// does not hash to its pinned hash, so it was not loaded (the state
	// is unchanged).
	EventGenesisRefused = "genesis_refused"
)

// AdmitGenesis admits a built-in skill whose files in src must hash to
// pinned, a hash the caller has taken from a verified, signed pin list.
// The files are copied into quarantine like Add's, a record with source
// SourceGenesis is created directly in state promoted (the signature stands
// for the scan, the runs and the approval a person gives other skills), and
// the files are copied to ActivePath.
//
// It is idempotent: a record already promoted whose active copy still
// hashes to pinned is returned unchanged and nothing is appended. It
// refuses (code T402), and appends an EventGenesisRefused audit entry to
// the record, when the active copy on disk has other content: that copy is
// left in place for inspection and the skill must not be loaded; removing
// the folder lets the next admission restore it. A record that is
// deprecated (by a person or by strikes) stays deprecated: the error says
// so (code T406) and the skill is not re-activated.
func (m *Manager) AdmitGenesis(ctx context.Context, src, pinned, origin, actor string) (Record, error) {
	const op = "quarantine.Manager.AdmitGenesis"
	if err := checkActor(op, actor); err != nil {
		return Record{}, err
	}
	if !sha256Pattern.MatchString(pinned) {
		return Record{}, talos.Errorf(talos.CodeBadSignature, op, "pinned hash \"%s\": want 64 lower-case hex digits from the signed pin list", clip(pinned, 80))
	}
	if origin == "" || len(origin) > 256 || hasControl(origin, false) {
		return Record{}, talos.Errorf(talos.CodePolicyDenied, op, "origin \"%s\": want 1–256 characters without control characters (the binary's version)", clip(origin, 40))
	}
	qdir := m.dir(QuarantineDir)
	staging := filepath.Join(qdir, tmpPrefix+"genesis-"+randomHex(8))
	c, err := copySkill(op, src, staging, 0o700, 0o600)
	if err != nil {
		return Record{}, err
	}
	defer os.RemoveAll(staging)
	if c.Hash != pinned {
		return Record{}, talos.Errorf(talos.CodeBadSignature, op, "the built-in files of %s hash to %s, not to the pinned %s: the binary is damaged or was altered; reinstall Talos", clip(src, 80), c.Hash[:12], pinned[:12])
	}
	man, err := ReadManifest(staging)
	if err != nil {
		return Record{}, err
	}
	key := Key{ID: man.ID, Version: man.Version, Hash: c.Hash}
	rec, err := m.store.Get(ctx, key)
	switch {
	case err == nil:
		if rec.State != StatePromoted {
			return rec, genesisOutOfUse(op, rec)
		}
		return m.checkGenesisActive(ctx, rec, actor)
	case !errors.Is(err, ErrNotFound):
		return Record{}, err
	}

	final := filepath.Join(qdir, fmt.Sprintf("%s-%s-%s", key.ID, key.Version, key.Hash[:16]))
	if err := os.Rename(staging, final); err != nil {
		prev, herr := HashDir(final)
		if herr != nil || prev.Hash != key.Hash {
			return Record{}, talos.E(talos.CodeBadSignature, op, "quarantine folder "+final+" exists with other content: it was changed on disk; remove it and start Talos again", err)
		}
	}
	dst := m.ActivePath(key)
	if _, err := os.Lstat(dst); err == nil {
		if ac, herr := HashDir(dst); herr != nil || ac.Hash != key.Hash {
			// Create the record anyway, so the refusal is in its audit trail.
			now := time.Now().UTC()
			rec = Record{Key: key, State: StatePromoted, Language: man.Language, Entry: man.Entry, Source: Source{Type: SourceGenesis, Origin: origin},
				Path: final, ActivePath: dst, SizeBytes: c.Size, CreatedAt: now, UpdatedAt: now, Scan: ScanNotRun}
			if err := m.store.Create(ctx, rec, AuditEntry{Actor: actor, Event: EventGenesisAdmitted, To: StatePromoted,
				Reason: fmt.Sprintf("signed built-in skill, %d files, %d bytes, from %s", len(c.Files), c.Size, clip(origin, 80))}); err != nil && !errors.Is(err, ErrExists) {
				return Record{}, err
			}
			return m.checkGenesisActive(ctx, rec, actor)
		}
	} else {
		if err := os.MkdirAll(m.dir(ActiveDir), 0o755); err != nil {
			return Record{}, talos.E(talos.CodeDirPermissions, op, "cannot create "+m.dir(ActiveDir), err)
		}
		ac, err := copySkill(op, final, dst, 0o755, 0o644)
		if err != nil {
			if done, herr := HashDir(dst); herr != nil || done.Hash != key.Hash {
				return Record{}, err
			}
			ac.Hash = key.Hash
		}
		if ac.Hash != key.Hash {
			os.RemoveAll(dst)
			return Record{}, talos.Errorf(talos.CodeBadSignature, op, "the files of %s changed while they were copied to %s: tampering suspected", key, dst)
		}
	}
	now := time.Now().UTC()
	rec = Record{Key: key, State: StatePromoted, Language: man.Language, Entry: man.Entry, Source: Source{Type: SourceGenesis, Origin: origin},
		Path: final, ActivePath: dst, SizeBytes: c.Size, CreatedAt: now, UpdatedAt: now, Scan: ScanNotRun}
	err = m.store.Create(ctx, rec, AuditEntry{Actor: actor, Event: EventGenesisAdmitted, To: StatePromoted,
		Reason: fmt.Sprintf("signed built-in skill, %d files, %d bytes, from %s", len(c.Files), c.Size, clip(origin, 80))})
	if errors.Is(err, ErrExists) {
		cur, gerr := m.store.Get(ctx, key)
		if gerr != nil {
			return Record{}, gerr
		}
		return m.checkGenesisActive(ctx, cur, actor)
	}
	if err != nil {
		return Record{}, err
	}
	m.log.InfoContext(ctx, "genesis skill admitted", "skill", key.String(), "path", dst)
	return rec, nil
}

// checkGenesisActive hashes the active copy of a promoted genesis record
// and refuses, with an audit entry, one that changed or is missing.
func (m *Manager) checkGenesisActive(ctx context.Context, rec Record, actor string) (Record, error) {
	const op = "quarantine.Manager.AdmitGenesis"
	dst := rec.ActivePath
	if dst == "" {
		dst = m.ActivePath(rec.Key)
	}
	if _, lerr := os.Lstat(dst); errors.Is(lerr, os.ErrNotExist) {
		// Removed by a person: restore it from the verified quarantined copy.
		if integrity(op, rec) == nil {
			if ac, cerr := copySkill(op, rec.Path, dst, 0o755, 0o644); cerr == nil && ac.Hash == rec.Hash {
				// A deprecation (strikes) may have moved the active folder
				// away after rec was read: then the copy must not stay.
				if cur, gerr := m.store.Get(ctx, rec.Key); gerr != nil || cur.State != StatePromoted {
					os.RemoveAll(dst)
					if gerr != nil {
						return rec, fmt.Errorf("%s: cannot read the record of %s again after restoring its active copy (the copy was removed): %w", op, rec.Key, gerr)
					}
					return cur, genesisOutOfUse(op, cur)
				}
				return rec, nil
			}
		}
	}
	c, err := HashDir(dst)
	if err == nil && c.Hash == rec.Hash {
		return rec, nil
	}
	got := "unreadable"
	if err == nil {
		got = "hash " + c.Hash[:12]
	}
	reason := fmt.Sprintf("active copy %s differs from the pinned hash %s (%s): not loaded; remove the folder to have it restored at the next start", clip(dst, 120), rec.Hash[:12], got)
	if _, uerr := m.store.Update(ctx, rec.Key, func(r *Record) (AuditEntry, error) {
		return AuditEntry{Actor: actor, Event: EventGenesisRefused, From: r.State, To: r.State, Reason: reason}, nil
	}); uerr != nil {
		m.log.ErrorContext(ctx, "cannot record a refused genesis skill", "skill", rec.Key.String(), "err", uerr)
	}
	m.log.WarnContext(ctx, "genesis skill refused: active files changed", "skill", rec.Key.String(), "path", dst)
	return rec, talos.Errorf(talos.CodeBadSignature, op, "genesis skill %s refused: %s", rec.Key, reason)
}

// genesisOutOfUse is the refusal of a genesis skill that is no longer
// promoted.
func genesisOutOfUse(op string, rec Record) error {
	return talos.Errorf(talos.CodePolicyDenied, op, "genesis skill %s is %s: it stays out of use; a person decided so or it collected strikes", rec.Key, rec.State)
}
