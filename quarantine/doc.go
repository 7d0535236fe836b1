// Package quarantine is the lifecycle of a skill — code the agent or a
// person adds — from untrusted to active. A skill never touches the host
// until it has passed a static scan, run cleanly in a sandbox the configured
// number of times, waited out a minimum quarantine age and been approved by
// a person with a code delivered out of band.
//
// # Identity
//
// A skill is a folder with a manifest, skill.yaml ([ParseManifest]: id,
// version, language, entry point, declared capabilities, dependencies pinned
// with == and a SHA-256), and its files. [HashDir] hashes the files in a
// documented canonical encoding and refuses links, special files and
// anything over the size caps. Trust is bound to the [Key] (id, version,
// content hash): a changed byte or a new version is a new record that starts
// at pending and inherits nothing; moving, renaming or re-importing a folder
// gives the same key, so it never raises trust.
//
// # States
//
// [Next] is the whole state machine:
//
//	pending ─start_run→ executing ─run_passed→ passed ─request_promotion→ awaiting_promotion ─approve→ promoted
//	passed ─start_run→ executing (further clean runs)      executing ─interrupt→ pending
//	pending, executing, passed ─fail→ failed               awaiting_promotion ─reject→ rejected
//	pending, executing, passed, awaiting_promotion, promoted ─deprecate→ deprecated
//
// Every other (state, event) pair is refused with an error naming what the
// state accepts. Failed, rejected and deprecated are final.
//
// # Scan, runs and promotion
//
// [Manager] drives a record through its life. [Manager.Add] copies a folder
// into quarantine (the copy is what is hashed, scanned, run and promoted).
// [Manager.Scan] runs [ScanDir], a static scan with findings by severity,
// rule, file and line; a critical or high finding fails the skill, and
// dependencies must be pinned with == and a sha256. [Manager.StartRun] and
// [Manager.FinishRun] bracket each sandboxed run (the sandbox itself is
// package quarantine/sandbox, whose Result gives FinishRun's verdict and the
// strike to record); a run starts only after a passed scan and with files
// that still hash to the record's hash.
//
// [Manager.RequestPromotion] checks eligibility — the configured number of
// clean runs (3), a passed scan, the minimum quarantine age (24 h), no
// failed run within the failure window, the files still hashing to the
// record's hash — then sends a 6-digit code from crypto/rand through a
// [Notifier] (console, a 0600 file, espeak-ng speech when installed) and
// stores only its HMAC, bound to the record. The code is never returned to
// the requester. [Manager.Approve] compares in constant time; the code is
// valid 24 h and 5 wrong tries reject the request. Promotion hashes the
// files again and copies them to active/<id>-<version> under a temporary
// name and renames it; approving twice is harmless and [Manager.Reconcile]
// finishes a promotion a crash interrupted.
//
// The spec's "production executions before promotion" is circular (nothing
// runs in production before it is promoted), so the clean sandboxed runs in
// quarantine are the one run count.
//
// # Genesis skills
//
// The skills that ship inside the Talos binary do not earn trust in
// quarantine: their content hashes are pinned at build time in a list
// signed with Ed25519. [Manager.AdmitGenesis] takes a folder and the hash
// from that verified list and records the skill (source [SourceGenesis])
// directly as promoted, in the same records and audit chain as any skill.
// It is idempotent; an active copy on disk that no longer hashes to the pin
// is refused with an audit entry and never loaded.
//
// # Storage
//
// A [Store] keeps records and appends an audit entry (actor, event, from,
// to, reason) in the same transaction as every change, to a hash chain that
// [Store.Verify] checks. Package quarantine/sqlstore stores them in SQLite or
// PostgreSQL; package quarantine/quarantinetest has an in-memory Store and
// the conformance suite both pass.
package quarantine
