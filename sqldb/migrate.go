package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
)

// Migration is one versioned schema change of a component. SQLite and
// Postgres hold the statements for each dialect; either may contain several
// statements separated by semicolons. Versions of one component start at 1
// and increase by one.
type Migration struct {
	Version  int
	Name     string
	SQLite   string
	Postgres string
}

// schemaTable records the version in force per component.
const schemaTable = `CREATE TABLE IF NOT EXISTS talos_schema (
	component  TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	name       TEXT    NOT NULL,
	applied_at TEXT    NOT NULL,
	PRIMARY KEY (component, version)
)`

var componentName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// Migrate applies, in order, each migration of component newer than the
// version recorded in the talos_schema table, every one in its own
// transaction together with its record, and returns the version then in
// force. Two processes migrating at once are safe: on PostgreSQL they
// serialise on an advisory lock, on SQLite on the immediate write lock. A
// database whose recorded version is newer than the newest migration given
// (written by a newer Talos) is refused rather than used.
func (db *DB) Migrate(ctx context.Context, component string, ms []Migration) (int, error) {
	const op = "sqldb.Migrate"
	if err := checkMigrations(component, ms); err != nil {
		return 0, talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
	}
	// PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a
	// concurrent twin (one of them fails on a duplicate type), so it runs
	// under the same kind of advisory lock as the migrations.
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("")); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, schemaTable)
		return err
	})
	if err != nil {
		return 0, db.wrap(op, "cannot create the talos_schema table on "+db.desc, err)
	}
	newest := len(ms)
	for _, m := range ms {
		var current int
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			// SQLite transactions begin IMMEDIATE, holding the write lock
			// from the start; PostgreSQL takes an advisory lock per component.
			if db.dialect == Postgres {
				if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey(component)); err != nil {
					return err
				}
			}
			if err := tx.QueryRowContext(ctx, db.Rebind("SELECT COALESCE(MAX(version), 0) FROM talos_schema WHERE component = ?"), component).Scan(&current); err != nil {
				return err
			}
			if current >= m.Version {
				return nil
			}
			text := m.SQLite
			if db.dialect == Postgres {
				text = m.Postgres
			}
			if err := execAll(ctx, tx, text); err != nil {
				return fmt.Errorf("migration %s %d (%s): %w", component, m.Version, m.Name, err)
			}
			_, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO talos_schema (component, version, name, applied_at) VALUES (?, ?, ?, ?)"),
				component, m.Version, m.Name, time.Now().UTC().Format(time.RFC3339Nano))
			current = m.Version
			return err
		})
		if err != nil {
			return 0, db.wrap(op, "cannot migrate "+component+" on "+db.desc, err)
		}
		if current > newest {
			return current, talos.Errorf(talos.CodeConfigInvalid, op,
				"%s schema of %s is at version %d but this Talos knows only up to %d: it was written by a newer Talos; upgrade Talos or restore an older backup",
				component, db.desc, current, newest)
		}
	}
	v, err := db.Version(ctx, component)
	if err == nil && v > newest {
		return v, talos.Errorf(talos.CodeConfigInvalid, op,
			"%s schema of %s is at version %d but this Talos knows only up to %d: it was written by a newer Talos; upgrade Talos or restore an older backup",
			component, db.desc, v, newest)
	}
	return v, err
}

// Version returns the schema version in force for component: 0 when it was
// never migrated.
func (db *DB) Version(ctx context.Context, component string) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, db.Rebind("SELECT COALESCE(MAX(version), 0) FROM talos_schema WHERE component = ?"), component).Scan(&v)
	if err != nil {
		if isNoTable(err) {
			return 0, nil
		}
		return 0, db.wrap("sqldb.Version", "cannot read the schema version of "+component, err)
	}
	return v, nil
}

func checkMigrations(component string, ms []Migration) error {
	var problems []string
	name := clip(component)
	if !componentName.MatchString(component) {
		problems = append(problems, fmt.Sprintf("component \"%s\": want lower-case letters, digits and '_', starting with a letter, at most 40", name))
	}
	for i, m := range ms {
		if m.Version != i+1 {
			problems = append(problems, fmt.Sprintf("migration %d of %s has version %d: versions must be 1, 2, 3, … in order", i, name, m.Version))
		}
		if strings.TrimSpace(m.SQLite) == "" || strings.TrimSpace(m.Postgres) == "" {
			problems = append(problems, fmt.Sprintf("migration %s %d (%s): both SQLite and Postgres statements are required", name, m.Version, clip(m.Name)))
		}
	}
	if len(problems) == 0 {
		return nil
	}
	return errors.New(strings.Join(problems, "; "))
}

// execAll runs each ';'-separated statement of text. Statements must not
// contain ';' inside string literals or trigger bodies.
func execAll(ctx context.Context, tx *sql.Tx, text string) error {
	for _, stmt := range strings.Split(text, ";") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("%w in: %s", err, clip(strings.TrimSpace(stmt)))
		}
	}
	return nil
}

func lockKey(component string) int64 {
	h := fnv.New64a()
	h.Write([]byte("talos_schema:" + component))
	return int64(h.Sum64())
}

func isNoTable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "no such table") || strings.Contains(s, "does not exist")
}

func (db *DB) wrap(op, msg string, err error) error {
	code := talos.CodeConfigInvalid
	if db.dialect == Postgres {
		code = talos.CodePostgres
	}
	return talos.E(code, op, msg, err)
}

// clip shortens s to 80 bytes and escapes control characters, for messages.
func clip(s string) string {
	const max = 80
	if len(s) > max {
		s = s[:max] + "…"
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// Versions returns the schema version in force for every component migrated
// in the database (empty when none was).
func (db *DB) Versions(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	rows, err := db.QueryContext(ctx, "SELECT component, MAX(version) FROM talos_schema GROUP BY component")
	if err != nil {
		if isNoTable(err) {
			return out, nil
		}
		return nil, db.wrap("sqldb.Versions", "cannot read the schema versions of "+db.desc, err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var v int
		if err := rows.Scan(&c, &v); err != nil {
			return nil, db.wrap("sqldb.Versions", "cannot read the schema versions of "+db.desc, err)
		}
		out[c] = v
	}
	return out, rows.Err()
}
