package sqlstore_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
	"github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
)

func Example() {
	dir, _ := os.MkdirTemp("", "memory")
	defer os.RemoveAll(dir)
	ctx := context.Background()
	db, _ := sqldb.Open(ctx, filepath.Join(dir, "talos.db"))
	defer db.Close()
	store, err := sqlstore.Open(ctx, db, sqlstore.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	emb, _ := hashembed.New(hashembed.Config{})
	text := "The staging database password rotates every Tuesday at noon."
	store.Upsert(ctx, []rag.Record{{ID: "m1", Document: text, Embedding: emb.Vector(text)}})

	hits, _ := store.KeywordSearch(ctx, "when does the database password rotate", 3, nil)
	fmt.Println(len(hits), hits[0].ID)
	// Output: 1 m1
}
