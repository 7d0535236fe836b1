// Package strikes takes a misbehaving skill out of service: every failed run
// of a skill is recorded as a signed strike, and when a skill collects
// Config.Threshold active strikes (three by default) it is deprecated and the
// owner of its files is told through a [Deprecator].
//
// A strike has a [Type] — an unhandled exception, a timeout, a resource
// violation or a security violation. Strikes are numbered 1, 2, 3, … per
// skill id and version and never renumbered; how many are still active is
// counted separately, so an expired strike never makes two strikes share a
// number. The same exception (its message normalised: UUIDs, timestamps and
// addresses replaced) within 24 hours counts once. Strikes expire after 30
// days, except security violations, which never expire and are never reset.
//
// Strikes follow the code, not the name: a skill's strikes are those
// recorded for its id and version and those recorded for any skill with the
// same content hash, so bumping the version or renaming the skill of the same
// code does not wipe its record.
//
// Every strike carries an HMAC-SHA256 signature over a canonical encoding
// (times in RFC 3339 UTC with nanoseconds), and every change is appended to a
// tamper-evident audit chain in the same transaction; [Tracker.Verify]
// checks both. The state lives in a [Store]: strikes/sqlstore keeps it in
// SQLite or PostgreSQL, strikes/strikestest has an in-memory fake and the
// conformance suite both pass.
package strikes
