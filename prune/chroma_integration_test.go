package prune_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chroma"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

// TestPruneRestoreOnChroma runs a prune end to end on the real Chroma
// server: exact count, permanent memories kept, archive → restore round
// trip of ids, documents, embeddings and typed metadata.
func TestPruneRestoreOnChroma(t *testing.T) {
	url := testenv.ChromaURL(t)
	ctx := context.Background()
	name := fmt.Sprintf("talos_prune_test_%d", time.Now().UnixNano())
	st, err := chroma.Open(ctx, chroma.Config{URL: url, Collection: name, Dimension: 8})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close(); _ = chroma.DeleteCollection(context.Background(), url, name) }()
	old := time.Now().Add(-40 * day).Truncate(time.Millisecond)
	var originals []rag.Record
	for i := 0; i < 60; i++ {
		p := rag.PriorityAuto
		if i%10 == 0 {
			p = rag.PriorityPermanent
		}
		md := rag.Memory{CreatedAt: old, LastAccessedAt: old, AccessCount: int64(i), Priority: p, Source: rag.SourceTool}.Metadata()
		md["w"] = 0.5
		originals = append(originals, rag.Record{ID: fmt.Sprintf("c%02d", i), Document: fmt.Sprintf("memory %d", i),
			Embedding: scale(ragtest.Unit(8, i, i+1, 0.25), 7.5), Metadata: md})
	}
	if err := st.Upsert(ctx, originals); err != nil {
		t.Fatal(err)
	}
	// The store keeps unit vectors; the restore must give back these bits.
	stored, err := st.List(ctx, rag.ListOptions{Embeddings: true})
	if err != nil || len(stored) != 60 {
		t.Fatalf("before prune %d records, %v", len(stored), err)
	}
	sort.Slice(stored, func(i, j int) bool { return stored[i].ID < stored[j].ID })
	p, _ := prune.New(prune.Config{Ceiling: 50, BatchSize: 7, ArchivePath: filepath.Join(t.TempDir(), "a.jsonl")}, st)
	rep, err := p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 20 {
		t.Fatalf("deleted %d, want 60 − 40 = 20", rep.Deleted)
	}
	if n, _ := st.Count(ctx); n != 40 {
		t.Fatalf("count %d after prune, want 40", n)
	}
	for _, c := range rep.Candidates {
		var i int
		fmt.Sscanf(c.ID, "c%d", &i)
		if i%10 == 0 {
			t.Fatalf("permanent %s pruned", c.ID)
		}
	}
	res, err := p.Restore(ctx, prune.RestoreOptions{})
	if err != nil || res.Restored != 20 {
		t.Fatalf("restore = %+v, %v", res, err)
	}
	got, err := st.List(ctx, rag.ListOptions{Embeddings: true})
	if err != nil || len(got) != 60 {
		t.Fatalf("after restore %d records, %v", len(got), err)
	}
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	for i, r := range got {
		o := originals[i]
		if r.ID != o.ID || r.Document != o.Document || len(r.Embedding) != 8 {
			t.Fatalf("record %d = %+v", i, r)
		}
		unit := rag.Normalize(o.Embedding)
		for k := range o.Embedding {
			if d := r.Embedding[k] - unit[k]; d > 1e-6 || d < -1e-6 {
				t.Fatalf("embedding of %s is %v, want the unit vector %v", r.ID, r.Embedding, unit)
			}
			if r.Embedding[k] != stored[i].Embedding[k] {
				t.Fatalf("embedding of %s changed in the round trip: %v → %v", r.ID, stored[i].Embedding, r.Embedding)
			}
		}
		if err := ragtest.SameMetadata(r.Metadata, o.Metadata); err != nil {
			t.Fatalf("%s: %v", r.ID, err)
		}
	}
}

func scale(v []float32, k float32) []float32 {
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = x * k
	}
	return out
}
