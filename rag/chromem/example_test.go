package chromem_test

import (
	"context"
	"fmt"
	"os"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chromem"
	"github.com/talos-ironclad/talos/rag/hashembed"
)

func ExampleOpen() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "chromem-example")
	defer os.RemoveAll(dir)
	emb, _ := hashembed.New(hashembed.Config{})
	store, _ := chromem.Open(chromem.Config{Path: dir, Dimension: emb.Dimension()})
	if err := rag.CheckDimension(ctx, store, emb); err != nil {
		fmt.Println(err)
		return
	}
	v := emb.Vector("backups run nightly at 02:00")
	_ = store.Upsert(ctx, []rag.Record{{ID: "b1", Document: "backups run nightly at 02:00", Embedding: v,
		Metadata: rag.Metadata{rag.KeyCreatedAt: int64(1_767_312_000_000)}}})

	// Reopen: the record, and the int64 type of created_at, survive.
	again, _ := chromem.Open(chromem.Config{Path: dir, Dimension: emb.Dimension()})
	f := rag.Gt(rag.KeyCreatedAt, 1_700_000_000_000) // a range filter chromem-go itself cannot do
	recs, _ := again.List(ctx, rag.ListOptions{Where: &f})
	fmt.Printf("%s %T\n", recs[0].Document, recs[0].Metadata[rag.KeyCreatedAt])
	// Output: backups run nightly at 02:00 int64
}
