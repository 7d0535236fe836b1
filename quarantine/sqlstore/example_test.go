package sqlstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
	"github.com/talos-ironclad/talos/quarantine/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "talos-example-")
	defer os.RemoveAll(dir)
	db, err := sqldb.Open(ctx, filepath.Join(dir, "talos.db"))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	key := make([]byte, 32)
	rand.Read(key)
	store, err := sqlstore.New(ctx, db, key)
	if err != nil {
		fmt.Println(err)
		return
	}
	rec := quarantinetest.SampleRecord("hello_world", "1.0.0", 1)
	store.Create(ctx, rec, quarantine.AuditEntry{Actor: "user:alice", Event: "added", To: rec.State})
	got, _ := store.Get(ctx, rec.Key)
	head, err := store.Verify(ctx)
	fmt.Println(got.Key, got.State, head.Entries, err)
	// Output:
	// hello_world@1.0.0#000000000000 pending 1 <nil>
}
