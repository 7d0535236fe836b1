package prune_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

func ExampleScore() {
	now := time.Now()
	fresh := rag.Memory{CreatedAt: now, LastAccessedAt: now, Priority: rag.PriorityAuto}
	old := rag.Memory{CreatedAt: now.Add(-60 * 24 * time.Hour), Priority: rag.PriorityTemporary}
	fmt.Printf("fresh auto:    %.3f\n", prune.Score(fresh.Metadata(), now))
	fmt.Printf("old temporary: %.3f\n", prune.Score(old.Metadata(), now))
	// Output:
	// fresh auto:    0.525
	// old temporary: 0.110
}

func ExamplePruner_Prune() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "prune-example")
	defer os.RemoveAll(dir)
	store := ragtest.NewMemoryStore(2)
	old := time.Now().Add(-10 * 24 * time.Hour)
	for i := 0; i < 95; i++ {
		_ = store.Upsert(ctx, []rag.Record{{ID: fmt.Sprintf("m%02d", i), Document: "note", Embedding: []float32{1, 0},
			Metadata: rag.Memory{CreatedAt: old, AccessCount: int64(i), Priority: rag.PriorityAuto}.Metadata()}})
	}
	p, _ := prune.New(prune.Config{Ceiling: 100, ArchivePath: filepath.Join(dir, "pruned.jsonl")}, store)
	rep, _ := p.Prune(ctx)
	left, _ := store.Count(ctx)
	fmt.Println("deleted", rep.Deleted, "left", left, "first to go", rep.Candidates[0].ID)
	res, _ := p.Restore(ctx, prune.RestoreOptions{IDs: []string{"m00"}})
	fmt.Println("restored", res.Restored)
	// Output:
	// deleted 15 left 80 first to go m00
	// restored 1
}
