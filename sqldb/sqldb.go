package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/talos-ironclad/talos"
)

// Dialect names the SQL engine behind a DB.
type Dialect string

// The dialects Open supports.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// BusyTimeout is how long a SQLite statement waits for another connection or
// process to release its lock before failing with "database is locked".
const BusyTimeout = 10 * time.Second

// txAttempts bounds how often Tx runs a transaction that failed on lock
// contention (SQLite busy, PostgreSQL serialization failure or deadlock).
const txAttempts = 5

// DB is an open database and its dialect. The embedded *sql.DB is safe for
// concurrent use; use its QueryContext, ExecContext and friends directly,
// with queries passed through Rebind.
type DB struct {
	*sql.DB
	dialect Dialect
	desc    string
}

// Open opens the database named by dsn. A dsn starting with postgres:// or
// postgresql:// is a PostgreSQL server (pgx); anything else is the path of a
// SQLite file, created 0600 in a folder created 0700 when missing. Open pings
// the database, so a wrong address or credentials fail here, not at first use.
func Open(ctx context.Context, dsn string) (*DB, error) {
	const op = "sqldb.Open"
	if strings.TrimSpace(dsn) == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "empty DSN: give a SQLite file path or a postgres:// URL")
	}
	if isPostgres(dsn) {
		return openPostgres(ctx, op, dsn)
	}
	return openSQLite(ctx, op, dsn)
}

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

func openPostgres(ctx context.Context, op, dsn string) (*DB, error) {
	desc := redact(dsn)
	sdb, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, talos.E(talos.CodePostgres, op, "cannot open "+desc, errors.New(scrub(err.Error(), dsn)))
	}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, talos.E(talos.CodePostgres, op, "cannot reach "+desc+": check TALOS_POSTGRES_URL and that the server runs", errors.New(scrub(err.Error(), dsn)))
	}
	return &DB{DB: sdb, dialect: Postgres, desc: desc}, nil
}

func openSQLite(ctx context.Context, op, path string) (*DB, error) {
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, talos.E(talos.CodeDirPermissions, op, "cannot create the folder of "+path, err)
	}
	// Create the file with its final mode before SQLite does (SQLite would
	// use 0644 under the default umask). The WAL and shared-memory files
	// SQLite creates later take the database file's mode.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, talos.E(talos.CodeDirPermissions, op, "cannot create "+path, err)
	}
	f.Close()
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	sdb, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "cannot open "+path, err)
	}
	if err := sdb.PingContext(ctx); err != nil {
		sdb.Close()
		return nil, talos.E(talos.CodeConfigInvalid, op, "cannot open SQLite database "+path+": is it a SQLite file?", err)
	}
	var mode string
	if err := sdb.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || !strings.EqualFold(mode, "wal") {
		sdb.Close()
		if err == nil {
			err = fmt.Errorf("journal_mode is %q", mode)
		}
		return nil, talos.E(talos.CodeConfigInvalid, op, "cannot put "+path+" in WAL mode (is its folder on a network file system?)", err)
	}
	return &DB{DB: sdb, dialect: SQLite, desc: "sqlite " + path}, nil
}

// Dialect reports which engine the DB talks to.
func (db *DB) Dialect() Dialect { return db.dialect }

// String describes the database for logs and /health: "sqlite PATH", or the
// PostgreSQL URL without its password and query parameters.
func (db *DB) String() string { return db.desc }

// Rebind rewrites '?' placeholders to PostgreSQL's $1, $2, … and returns
// query unchanged on SQLite. A '?' inside a single-quoted string literal is
// left alone.
func (db *DB) Rebind(query string) string {
	if db.dialect != Postgres || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 8)
	n, inString := 0, false
	for i := 0; i < len(query); i++ {
		c := query[i]
		switch {
		case c == '\'':
			inString = !inString
		case c == '?' && !inString:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Tx runs fn inside a transaction and commits it when fn returns nil; any
// error from fn rolls it back and is returned as it is. A transaction that
// fails on lock contention — SQLite "database is locked" after the busy
// timeout, a PostgreSQL serialization failure or deadlock — is run again, up
// to a few times, so fn must not have effects outside the transaction.
func (db *DB) Tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	var err error
	for attempt := 0; attempt < txAttempts; attempt++ {
		if attempt > 0 {
			t := time.NewTimer(time.Duration(attempt*attempt) * 10 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
		err = db.tx(ctx, fn)
		if err == nil || !retryable(err) {
			return err
		}
	}
	return err
}

func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) (err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if p := recover(); p != nil {
			tx.Rollback()
			panic(p)
		}
		if err != nil {
			tx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}

// retryable reports whether err is lock contention worth another attempt.
func retryable(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return true
		}
		return false
	}
	var sc interface{ SQLState() string }
	if errors.As(err, &sc) {
		switch sc.SQLState() {
		case "40001", "40P01": // serialization_failure, deadlock_detected
			return true
		}
	}
	return false
}

// redact returns a PostgreSQL URL without password and query (which may
// carry sslpassword and other secrets), for messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<PostgreSQL URL that does not parse>"
	}
	if u.User != nil {
		u.User = url.User(u.User.Username())
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String()
}

// scrub removes the password of dsn from a driver's error text, in case the
// driver quotes its connection string.
func scrub(msg, dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil || u.User == nil {
		return msg
	}
	if p, ok := u.User.Password(); ok && p != "" {
		msg = strings.ReplaceAll(msg, p, "xxxxx")
	}
	return msg
}
