package sqldbtest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

func TestDatabasesArePrivateAndDroppedAtCleanup(t *testing.T) {
	ctx := context.Background()
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			var first string
			t.Run("use", func(t *testing.T) {
				first = sqldbtest.DSN(t, d)
				a, b := sqldbtest.OpenDSN(t, first), sqldbtest.Open(t, d)
				if _, err := a.ExecContext(ctx, "CREATE TABLE mine (x INTEGER)"); err != nil {
					t.Fatal(err)
				}
				if _, err := b.ExecContext(ctx, "SELECT * FROM mine"); err == nil {
					t.Error("a second fresh database sees the first one's table")
				}
				if a.Dialect() != d {
					t.Errorf("dialect %s, want %s", a.Dialect(), d)
				}
			})
			if d != sqldb.Postgres {
				return
			}
			schema := first[strings.Index(first, "search_path=")+len("search_path="):]
			admin := sqldbtest.OpenDSN(t, testenv.PostgresURL(t))
			var n int
			if err := admin.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = $1", schema).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Errorf("schema %s still exists after the test ended", schema)
			}
		})
	}
}
