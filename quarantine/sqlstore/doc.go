// Package sqlstore keeps quarantine records in SQLite or PostgreSQL through
// package sqldb, with every change appended to a signed, hash-chained audit
// table (sqldb.Chain) in the same transaction as the change.
//
//	db, err := sqldb.Open(ctx, dsn) // a SQLite file or a postgres:// URL
//	store, err := sqlstore.New(ctx, db, auditKey)
//	m, err := quarantine.New(quarantine.Config{Dir: skillsDir, CodeKey: codeKey, Logger: logger}, store, notifier)
//
// New applies the component's migrations ("quarantine": the table
// quarantine_skills and the chain quarantine_audit). Times are stored as
// RFC 3339 UTC text with all nine fractional digits, so both dialects
// round-trip them exactly and they sort as text in time order.
package sqlstore
