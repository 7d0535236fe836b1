package sqldb_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

var notes = []sqldb.Migration{
	{Version: 1, Name: "notes",
		SQLite:   `CREATE TABLE notes (id INTEGER PRIMARY KEY AUTOINCREMENT, writer TEXT NOT NULL, n INTEGER NOT NULL)`,
		Postgres: `CREATE TABLE notes (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, writer TEXT NOT NULL, n INTEGER NOT NULL)`},
}

func TestOpenSQLiteFileModesAndPragmas(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	path := filepath.Join(dir, "talos.db")
	db, err := sqldb.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.Dialect() != sqldb.SQLite || db.String() != "sqlite "+path {
		t.Errorf("Dialect, String = %q, %q", db.Dialect(), db)
	}
	for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s mode %v, want %v", p, got, want)
		}
	}
	for pragma, want := range map[string]string{
		"journal_mode": "wal", "foreign_keys": "1", "synchronous": "2",
		"busy_timeout": strconv.FormatInt(sqldb.BusyTimeout.Milliseconds(), 10),
	} {
		var got string
		if err := db.QueryRow("PRAGMA " + pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("PRAGMA %s = %s, want %s", pragma, got, want)
		}
	}
}

func TestOpenRefusesWhatIsNotADatabase(t *testing.T) {
	ctx := context.Background()
	if _, err := sqldb.Open(ctx, "  "); !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "postgres://") {
		t.Errorf("empty DSN: %v", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.db")
	if err := os.WriteFile(junk, []byte(strings.Repeat("not a database ", 100)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := sqldb.Open(ctx, junk)
	if err == nil || !strings.Contains(err.Error(), junk) {
		t.Errorf("junk file: %v, want an error naming %s", err, junk)
	}
	if b, _ := os.ReadFile(junk); !strings.HasPrefix(string(b), "not a database") {
		t.Error("opening a junk file changed it")
	}
}

func TestOpenPostgresNeverShowsThePassword(t *testing.T) {
	const secret = "s3cret-Passw0rd"
	// Nothing listens on port 1: the connection fails, and the message
	// must name the server without the password or query secrets.
	_, err := sqldb.Open(context.Background(), "postgres://talos:"+secret+"@127.0.0.1:1/talos?sslpassword="+secret+"&connect_timeout=2")
	if err == nil {
		t.Fatal("connected to port 1")
	}
	if !errors.Is(err, talos.ErrPostgres) {
		t.Errorf("code: %v", err)
	}
	if strings.Contains(err.Error(), secret) {
		t.Errorf("password in error: %v", err)
	}
	if !strings.Contains(err.Error(), "postgres://talos@127.0.0.1:1/talos") {
		t.Errorf("error does not name the server: %v", err)
	}
}

func TestRebind(t *testing.T) {
	pg := sqldbtest.Open(t, sqldb.Postgres)
	lite := sqldbtest.Open(t, sqldb.SQLite)
	for _, c := range []struct{ in, pg string }{
		{"SELECT 1", "SELECT 1"},
		{"SELECT a FROM t WHERE b = ? AND c = ?", "SELECT a FROM t WHERE b = $1 AND c = $2"},
		{"SELECT '?' , ? FROM t WHERE x = 'it''s ?' AND y = ?", "SELECT '?' , $1 FROM t WHERE x = 'it''s ?' AND y = $2"},
	} {
		if got := pg.Rebind(c.in); got != c.pg {
			t.Errorf("postgres Rebind(%q) = %q, want %q", c.in, got, c.pg)
		}
		if got := lite.Rebind(c.in); got != c.in {
			t.Errorf("sqlite Rebind(%q) = %q, want it unchanged", c.in, got)
		}
	}
}

func TestMigrate(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := sqldbtest.Open(t, d)
			if v, err := db.Version(ctx, "notes"); err != nil || v != 0 {
				t.Fatalf("Version before = %d, %v", v, err)
			}
			if vs, err := db.Versions(ctx); err != nil || len(vs) != 0 {
				t.Fatalf("Versions before = %v, %v", vs, err)
			}
			for i := 0; i < 2; i++ { // the second run is a no-op
				if v, err := db.Migrate(ctx, "notes", notes); err != nil || v != 1 {
					t.Fatalf("Migrate #%d = %d, %v", i, v, err)
				}
			}
			insert(t, db, "a", 1)

			// A failing migration changes nothing: its table is not
			// there, the version stays, the data stays.
			bad := append(notes[:1:1], sqldb.Migration{Version: 2, Name: "broken",
				SQLite:   "CREATE TABLE extra (x INTEGER); INSERT INTO nowhere VALUES (1)",
				Postgres: "CREATE TABLE extra (x INTEGER); INSERT INTO nowhere VALUES (1)"})
			_, err := db.Migrate(ctx, "notes", bad)
			if err == nil || !strings.Contains(err.Error(), "notes 2 (broken)") || !strings.Contains(err.Error(), "nowhere") {
				t.Fatalf("broken migration: %v", err)
			}
			if v, _ := db.Version(ctx, "notes"); v != 1 {
				t.Errorf("version after a failed migration = %d, want 1", v)
			}
			if _, err := db.ExecContext(ctx, "SELECT * FROM extra"); err == nil {
				t.Error("the failed migration's first statement was kept")
			}

			good := append(notes[:1:1], sqldb.Migration{Version: 2, Name: "index",
				SQLite: "CREATE INDEX notes_writer ON notes (writer)", Postgres: "CREATE INDEX notes_writer ON notes (writer)"})
			if v, err := db.Migrate(ctx, "notes", good); err != nil || v != 2 {
				t.Fatalf("Migrate to 2 = %d, %v", v, err)
			}
			if got := count(t, db); got != 1 {
				t.Errorf("rows after migrations = %d, want 1", got)
			}
			// Components are independent.
			if v, _ := db.Version(ctx, "other"); v != 0 {
				t.Errorf("other component at %d", v)
			}
			if vs, err := db.Versions(ctx); err != nil || fmt.Sprint(vs) != "map[notes:2]" {
				t.Errorf("Versions = %v, %v", vs, err)
			}

			// A database migrated by a newer Talos is refused.
			_, err = db.Migrate(ctx, "notes", notes)
			if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "newer Talos") {
				t.Errorf("older migrations on a newer schema: %v", err)
			}
		})
	}
}

func TestMigrateRejectsBadMigrationsAllAtOnce(t *testing.T) {
	db := sqldbtest.Open(t, sqldb.SQLite)
	_, err := db.Migrate(context.Background(), "Bad Name\n", []sqldb.Migration{
		{Version: 1, Name: "ok", SQLite: "SELECT 1", Postgres: "SELECT 1"},
		{Version: 3, Name: "gap", SQLite: "SELECT 1", Postgres: "SELECT 1"},
		{Version: 3, Name: "one-sided", SQLite: "SELECT 1"},
	})
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{`Bad Name\n`, "has version 3", "one-sided", "both SQLite and Postgres"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}

// TestConcurrentWritersLoseNothing writes from two connection pools on one
// database at once, with migrations racing too, as two talos processes
// starting together would.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	const pools, workers, each = 2, 4, 25
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			dsn := sqldbtest.DSN(t, d)
			var wg sync.WaitGroup
			errs := make(chan error, pools*workers)
			for p := 0; p < pools; p++ {
				db := sqldbtest.OpenDSN(t, dsn)
				for w := 0; w < workers; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						if _, err := db.Migrate(context.Background(), "notes", notes); err != nil {
							errs <- err
							return
						}
						errs <- writeMany(db, fmt.Sprintf("p%dw%d", p, w), each)
					}()
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Error(err)
				}
			}
			if got := count(t, sqldbtest.OpenDSN(t, dsn)); got != pools*workers*each {
				t.Errorf("%d rows, want %d", got, pools*workers*each)
			}
		})
	}
}

// TestTwoProcessesWriteOneSQLiteFile runs this test binary twice more as
// writers of one file at the same time as this process writes to it.
func TestTwoProcessesWriteOneSQLiteFile(t *testing.T) {
	const each = 200
	if dsn := os.Getenv("SQLDB_TEST_WRITER_DSN"); dsn != "" {
		return // the child's work is done in TestMain
	}
	dsn := sqldbtest.DSN(t, sqldb.SQLite)
	db := sqldbtest.OpenDSN(t, dsn)
	if _, err := db.Migrate(context.Background(), "notes", notes); err != nil {
		t.Fatal(err)
	}
	var cmds []*exec.Cmd
	var outs []*strings.Builder
	for i := 0; i < 2; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTwoProcessesWriteOneSQLiteFile$")
		cmd.Env = append(os.Environ(), "SQLDB_TEST_WRITER_DSN="+dsn, "SQLDB_TEST_WRITER=child"+strconv.Itoa(i), "SQLDB_TEST_WRITES="+strconv.Itoa(each))
		out := &strings.Builder{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, outs = append(cmds, cmd), append(outs, out)
	}
	if err := writeMany(db, "parent", each); err != nil {
		t.Error(err)
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("writer %d: %v\n%s", i, err, outs[i])
		}
	}
	if got := count(t, db); got != 3*each {
		t.Errorf("%d rows, want %d", got, 3*each)
	}
}

func TestMain(m *testing.M) {
	if dsn := os.Getenv("SQLDB_TEST_WRITER_DSN"); dsn != "" {
		n, _ := strconv.Atoi(os.Getenv("SQLDB_TEST_WRITES"))
		db, err := sqldb.Open(context.Background(), dsn)
		if err == nil {
			err = writeMany(db, os.Getenv("SQLDB_TEST_WRITER"), n)
			db.Close()
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// writeMany inserts n rows, one transaction each, reading inside each
// transaction first so that it holds the lock for a read-modify-write.
func writeMany(db *sqldb.DB, writer string, n int) error {
	ctx := context.Background()
	for i := 0; i < n; i++ {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			var last int
			if err := tx.QueryRowContext(ctx, db.Rebind("SELECT COALESCE(MAX(n), 0) FROM notes WHERE writer = ?"), writer).Scan(&last); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO notes (writer, n) VALUES (?, ?)"), writer, last+1)
			return err
		})
		if err != nil {
			return fmt.Errorf("%s write %d: %w", writer, i, err)
		}
	}
	return nil
}

func insert(t *testing.T, db *sqldb.DB, writer string, n int) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), db.Rebind("INSERT INTO notes (writer, n) VALUES (?, ?)"), writer, n); err != nil {
		t.Fatal(err)
	}
}

func count(t *testing.T, db *sqldb.DB) int {
	t.Helper()
	var n int
	if err := db.QueryRow("SELECT COUNT(*) FROM notes").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestTxRollsBackOnErrorAndPanic(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			db := sqldbtest.Open(t, d)
			if _, err := db.Migrate(ctx, "notes", notes); err != nil {
				t.Fatal(err)
			}
			boom := errors.New("boom")
			err := db.Tx(ctx, func(tx *sql.Tx) error {
				if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO notes (writer, n) VALUES (?, ?)"), "x", 1); err != nil {
					return err
				}
				return boom
			})
			if err != boom {
				t.Errorf("Tx returned %v, want fn's error as it is", err)
			}
			func() {
				defer func() { recover() }()
				db.Tx(ctx, func(tx *sql.Tx) error {
					tx.ExecContext(ctx, db.Rebind("INSERT INTO notes (writer, n) VALUES (?, ?)"), "x", 2)
					panic("in fn")
				})
			}()
			if got := count(t, db); got != 0 {
				t.Errorf("%d rows kept from rolled-back transactions", got)
			}
		})
	}
}
