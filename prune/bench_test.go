package prune_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

// metas returns n metadata maps under the memory schema with varied
// priorities, ages and access counts.
func metas(n int) []rag.Metadata {
	now := time.Now()
	prios := []rag.Priority{rag.PriorityAuto, rag.PriorityNormal, rag.PriorityHigh, rag.PriorityTemporary, rag.PriorityPermanent, rag.PrioritySession}
	out := make([]rag.Metadata, n)
	for i := range out {
		created := now.Add(-time.Duration(i%9600) * time.Hour)
		out[i] = rag.Memory{CreatedAt: created, LastAccessedAt: created.Add(time.Duration(i%50) * time.Hour),
			AccessCount: int64(i % 700), Priority: prios[i%len(prios)], Source: rag.SourceUser}.Metadata()
	}
	return out
}

// BenchmarkScore100k scores and checks the guarantees of 100,000 memories
// (the CPU part of a prune; target < 1 s).
//
//	go test -run '^$' -bench Score100k -benchtime 10x ./prune
func BenchmarkScore100k(b *testing.B) {
	ms := metas(100_000)
	now := time.Now()
	for b.Loop() {
		for _, md := range ms {
			if !prune.Protected(md, now) {
				_ = prune.Score(md, now)
			}
		}
	}
}

// BenchmarkPlan100k is a whole dry-run plan over 100,000 records in the
// in-memory store: page through the metadata, score, sort, pick.
//
//	go test -run '^$' -bench Plan100k -benchtime 5x ./prune
func BenchmarkPlan100k(b *testing.B) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(2)
	ms := metas(100_000)
	var recs []rag.Record
	for i, md := range ms {
		recs = append(recs, rag.Record{ID: fmt.Sprintf("r%06d", i), Document: "memory", Embedding: []float32{1, 0}, Metadata: md})
	}
	if err := st.Upsert(ctx, recs); err != nil {
		b.Fatal(err)
	}
	p, _ := prune.New(prune.Config{}, st)
	for b.Loop() {
		if _, err := p.Plan(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
