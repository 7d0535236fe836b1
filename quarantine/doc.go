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
// # Storage
//
// A [Store] keeps records and appends an audit entry (actor, event, from,
// to, reason) in the same transaction as every change, to a hash chain that
// [Store.Verify] checks. Package quarantine/sqlstore stores them in SQLite or
// PostgreSQL; package quarantine/quarantinetest has an in-memory Store and
// the conformance suite both pass.
package quarantine
