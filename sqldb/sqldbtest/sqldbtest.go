package sqldbtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/talos-ironclad/talos/sqldb"
)

// Dialects lists every dialect sqldb supports, for table-driven tests:
//
//	for _, d := range sqldbtest.Dialects {
//		t.Run(string(d), func(t *testing.T) { db := sqldbtest.Open(t, d); … })
//	}
var Dialects = []sqldb.Dialect{sqldb.SQLite, sqldb.Postgres}

// DSN returns the address of a fresh, empty database of dialect d that lives
// as long as tb: the path of a SQLite file in tb's temporary folder, or a
// postgres:// URL whose connections use a new schema of their own (through
// the search_path parameter), dropped with everything in it at cleanup. Every
// call gives a different database, so two sqldb.Open calls on one DSN act as
// two processes sharing it.
func DSN(tb testing.TB, d sqldb.Dialect) string {
	tb.Helper()
	switch d {
	case sqldb.SQLite:
		return filepath.Join(tb.TempDir(), "talos.db")
	case sqldb.Postgres:
		return postgresSchema(tb, postgresURL(tb))
	}
	tb.Fatalf("sqldbtest: unknown dialect %q: want %q or %q", d, sqldb.SQLite, sqldb.Postgres)
	return ""
}

// Open opens a fresh database of dialect d (see DSN) and closes it at
// cleanup. A failure to open fails the test.
func Open(tb testing.TB, d sqldb.Dialect) *sqldb.DB {
	tb.Helper()
	return OpenDSN(tb, DSN(tb, d))
}

// OpenDSN opens dsn with sqldb.Open and closes it at cleanup; use it for a
// second connection pool on a DSN from DSN.
func OpenDSN(tb testing.TB, dsn string) *sqldb.DB {
	tb.Helper()
	db, err := sqldb.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("sqldbtest: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

func postgresSchema(tb testing.TB, base string) string {
	tb.Helper()
	ctx := context.Background()
	admin, err := sqldb.Open(ctx, base)
	if err != nil {
		tb.Fatalf("sqldbtest: %v", err)
	}
	var b [6]byte
	rand.Read(b[:])
	schema := "talos_test_" + hex.EncodeToString(b[:])
	if _, err := admin.ExecContext(ctx, "CREATE SCHEMA "+schema); err != nil {
		admin.Close()
		tb.Fatalf("sqldbtest: create schema %s on %s: %v", schema, admin, err)
	}
	tb.Cleanup(func() {
		defer admin.Close()
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			tb.Errorf("sqldbtest: drop schema %s: %v", schema, err)
		}
	})
	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("sqldbtest: TALOS_TEST_POSTGRES_URL does not parse: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
