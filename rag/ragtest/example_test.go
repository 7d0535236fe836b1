package ragtest_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

func ExampleMemoryStore() {
	ctx := context.Background()
	s := ragtest.NewMemoryStore(4)
	_ = s.Upsert(ctx, []rag.Record{
		{ID: "a", Document: "alpha", Embedding: ragtest.Unit(4, 0, 1, 0.1), Metadata: rag.Metadata{"priority": "high"}},
		{ID: "b", Document: "beta", Embedding: ragtest.Unit(4, 2, 3, 0.1), Metadata: rag.Metadata{"priority": "auto"}},
	})
	f := rag.Eq("priority", "high")
	got, _ := s.Query(ctx, ragtest.Unit(4, 0, 0, 0), 5, &f)
	fmt.Printf("%s %.2f\n", got[0].ID, got[0].Similarity)
	// Output: a 1.00
}
