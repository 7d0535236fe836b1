package prune_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

func TestConsolidateMergesNearDuplicates(t *testing.T) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(8)
	now := time.Now()
	mem := func(id string, axis int, m rag.Memory) rag.Record {
		return rag.Record{ID: id, Document: id, Embedding: ragtest.Unit(8, axis, axis+1, 0.2), Metadata: m.Metadata()}
	}
	user := rag.Memory{Priority: rag.PriorityNormal, Source: rag.SourceUser, Trusted: true, AccessCount: 3}
	old, fresh := user, user
	old.CreatedAt, fresh.CreatedAt = now.Add(-10*24*time.Hour), now.Add(-time.Hour)
	perm := fresh
	perm.Priority = rag.PriorityPermanent
	web := fresh
	web.Source, web.Trusted = rag.SourceWeb, false
	if err := st.Upsert(ctx, []rag.Record{
		mem("a-old", 0, old), mem("b-repeat", 0, fresh), // same text: merge
		mem("c-perm", 2, perm), mem("d-repeat", 2, fresh), // the permanent one stays
		mem("e-web", 4, web), mem("f-user", 4, fresh), // different source and trust: kept apart
		mem("g-alone", 6, fresh),
	}); err != nil {
		t.Fatal(err)
	}
	p, err := prune.New(prune.Config{Ceiling: 100, ArchivePath: filepath.Join(t.TempDir(), "archive.jsonl")}, st)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Consolidate(ctx, now.Add(-24*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Merged != 2 {
		t.Fatalf("merged %d, want 2 (%+v)", rep.Merged, rep)
	}
	left, _ := st.List(ctx, rag.ListOptions{})
	ids := map[string]bool{}
	for _, r := range left {
		ids[r.ID] = true
	}
	if ids["a-old"] == ids["b-repeat"] || !ids["c-perm"] || ids["d-repeat"] || !ids["e-web"] || !ids["f-user"] || !ids["g-alone"] {
		t.Fatalf("left %v", ids)
	}
	kept := "a-old"
	if ids["b-repeat"] {
		kept = "b-repeat"
	}
	got, _ := st.Get(ctx, []string{kept, "c-perm"})
	for _, r := range got {
		if r.Metadata.Memory().AccessCount != 6 {
			t.Errorf("%s access count %d, want the two merged counts (6)", r.ID, r.Metadata.Memory().AccessCount)
		}
	}
	// The merged memories come back from the archive.
	if rr, err := p.Restore(ctx, prune.RestoreOptions{Run: rep.Run}); err != nil || rr.Restored != 2 {
		t.Fatalf("Restore = %+v, %v", rr, err)
	}
	if n, _ := st.Count(ctx); n != 7 {
		t.Errorf("%d memories after the restore, want 7", n)
	}
}

// Merges are written in batches: across a batch boundary and through a
// chain (three repeats of one text folded into one), every count is kept
// and every merged memory is archived.
func TestConsolidateAcrossBatchesKeepsEveryCount(t *testing.T) {
	ctx := context.Background()
	// Groups at distinct (axis, axis) pairs: two groups sharing one axis
	// are 0.96 alike at most, under the 0.97 of a repeat.
	const pairs, dim = 600, 40
	st := ragtest.NewMemoryStore(dim)
	now := time.Now()
	m := rag.Memory{Priority: rag.PriorityNormal, Source: rag.SourceUser, Trusted: true, AccessCount: 3, CreatedAt: now.Add(-time.Hour)}
	var recs []rag.Record
	for i := 0; i < pairs; i++ {
		for _, s := range []string{"x", "y"} {
			a := i % dim
			recs = append(recs, rag.Record{ID: fmt.Sprintf("g%04d-%s", i, s), Document: "d", Embedding: ragtest.Unit(dim, a, a+1+i/dim, 0.2), Metadata: m.Metadata()})
		}
	}
	for _, s := range []string{"t1", "t2", "t3"} {
		recs = append(recs, rag.Record{ID: s, Document: "d", Embedding: ragtest.Unit(dim, 0, 31, 0.2), Metadata: m.Metadata()})
	}
	if err := st.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(t.TempDir(), "archive.jsonl")
	p, err := prune.New(prune.Config{Ceiling: 10_000, ArchivePath: archive}, st)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Consolidate(ctx, now.Add(-24*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Merged != pairs+2 {
		t.Fatalf("merged %d, want %d", rep.Merged, pairs+2)
	}
	left, _ := st.List(ctx, rag.ListOptions{Limit: 10_000})
	if len(left) != pairs+1 {
		t.Fatalf("%d memories left, want %d", len(left), pairs+1)
	}
	for _, r := range left {
		want := int64(6)
		if r.ID[0] == 't' {
			want = 9
		}
		if got := r.Metadata.Memory().AccessCount; got != want {
			t.Errorf("%s access count %d, want %d", r.ID, got, want)
		}
	}
	if rr, err := p.Restore(ctx, prune.RestoreOptions{Run: rep.Run}); err != nil || rr.Restored != pairs+2 {
		t.Fatalf("Restore = %+v, %v", rr, err)
	}
}
