// Package sqldb is the small SQL layer the relational store adapters share:
// it opens the embedded SQLite database or a PostgreSQL server behind one
// *sql.DB, applies versioned migrations per component, rewrites placeholders
// for the dialect and runs transactions with retries on lock contention.
//
// The embedded default is SQLite through modernc.org/sqlite (pure Go, no cgo),
// opened in WAL mode with a busy timeout, foreign keys on, synchronous=FULL
// (an acknowledged commit survives power loss) and write transactions that
// begin IMMEDIATE, so two processes writing the same file at once queue
// behind each other instead of failing half-way. A DSN that starts with
// postgres:// or postgresql:// opens PostgreSQL through pgx's database/sql
// driver instead.
//
// Queries are written once with '?' placeholders and passed through
// [DB.Rebind]; schema differences (BLOB against BYTEA, AUTOINCREMENT against
// IDENTITY) go into the two texts of a [Migration].
//
// Tests use package sqldb/sqldbtest, which gives a fresh database of either
// dialect: a file in a temporary folder, or a private schema on a PostgreSQL
// server.
package sqldb
