package chroma_test

import (
	"encoding/json"
	"fmt"

	"github.com/talos-ironclad/talos/rag"
)

// Filters reach the Chroma server in its own where syntax, with int64
// timestamps kept exact. With a server running:
//
//	store, err := chroma.Open(ctx, chroma.Config{URL: "http://127.0.0.1:8000", Dimension: 384})
//	matches, err := store.Query(ctx, vector, 10, &f)
func Example_filter() {
	f := rag.And(rag.In(rag.KeyPriority, "high", "permanent"), rag.Gt(rag.KeyCreatedAt, 1_767_312_000_000))
	b, _ := json.Marshal(f)
	fmt.Println(string(b))
	// Output: {"$and":[{"priority":{"$in":["high","permanent"]}},{"created_at":{"$gt":1767312000000}}]}
}
