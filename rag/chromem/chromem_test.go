package chromem_test

import (
	"context"
	"errors"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chromem"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

func TestConformancePersistent(t *testing.T) {
	ragtest.RunStore(t, func(t *testing.T, dim int) rag.Store {
		s, err := chromem.Open(chromem.Config{Path: t.TempDir(), Dimension: dim})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestConformanceInMemory(t *testing.T) {
	ragtest.RunStore(t, func(t *testing.T, dim int) rag.Store {
		s, err := chromem.Open(chromem.Config{Dimension: dim})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// TestReopen checks persistence: records, typed metadata and the list
// survive a restart, and a different dimension is refused.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := chromem.Open(chromem.Config{Path: dir, Dimension: 8})
	if err != nil {
		t.Fatal(err)
	}
	in := rag.Record{ID: "x", Document: "persisted", Embedding: ragtest.Unit(8, 1, 2, 0.5),
		Metadata: rag.Metadata{"created_at": int64(1_763_900_000_000), "trusted": true, "w": 0.75, "priority": "high"}}
	if err := s.Upsert(ctx, []rag.Record{in}); err != nil {
		t.Fatal(err)
	}
	s2, err := chromem.Open(chromem.Config{Path: dir, Dimension: 8})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.List(ctx, rag.ListOptions{Embeddings: true})
	if err != nil || len(got) != 1 {
		t.Fatalf("after reopen List = %v, %v", got, err)
	}
	if err := ragtest.SameMetadata(got[0].Metadata, in.Metadata); err != nil {
		t.Fatal(err)
	}
	if got[0].Document != "persisted" || len(got[0].Embedding) != 8 {
		t.Fatalf("after reopen record = %+v", got[0])
	}
	_, err = chromem.Open(chromem.Config{Path: dir, Dimension: 16})
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("reopen with another dimension = %v, want T010", err)
	}
}
