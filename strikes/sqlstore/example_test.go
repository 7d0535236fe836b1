package sqlstore_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/sqlstore"
)

func Example() {
	dir, _ := os.MkdirTemp("", "strikes")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(dir, "talos.db")) // or TALOS_POSTGRES_URL
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	key := bytes.Repeat([]byte{42}, 32) // the daemon keeps a random key in TALOS_HOME/keys
	store, err := sqlstore.New(ctx, db, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	tr, _ := strikes.New(strikes.Config{Key: key}, store, nil)
	skill := strikes.Skill{ID: "file_manager", Version: "1.0.0", Hash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
	tr.Record(ctx, skill, strikes.Failure{Type: strikes.Security, ExceptionType: "PermissionError", Message: "open /etc/shadow"})
	r, err := tr.Verify(ctx)
	fmt.Println(r.Strikes, r.AuditEntries, err)
	// Output: 1 1 <nil>
}
