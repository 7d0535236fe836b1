package sqldb_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"

	"github.com/talos-ironclad/talos/sqldb"
)

// A component declares its schema once per dialect, migrates at start-up and
// writes with '?' placeholders passed through Rebind.
func Example() {
	dir, _ := os.MkdirTemp("", "sqldb-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := sqldb.Open(ctx, filepath.Join(dir, "talos.db")) // or a postgres:// URL
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()

	version, err := db.Migrate(ctx, "greetings", []sqldb.Migration{{
		Version:  1,
		Name:     "greetings",
		SQLite:   "CREATE TABLE greetings (id INTEGER PRIMARY KEY AUTOINCREMENT, text TEXT NOT NULL)",
		Postgres: "CREATE TABLE greetings (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, text TEXT NOT NULL)",
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO greetings (text) VALUES (?)"), "hello")
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	var text string
	db.QueryRowContext(ctx, "SELECT text FROM greetings").Scan(&text)
	fmt.Println(db.Dialect(), "schema version", version, "says", text)
	// Output: sqlite schema version 1 says hello
}
