package chromem_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// TestStat counts a persistent store's records and checks its dimension
// without opening it, and creates nothing.
func TestStat(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	info, err := chromem.Stat(chromem.Config{Path: dir, Dimension: 8})
	if err != nil || info.Records != 0 || info.Dimension != 0 {
		t.Fatalf("Stat of an empty directory: %+v, %v", info, err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("Stat created %v", entries)
	}
	s, err := chromem.Open(chromem.Config{Path: dir, Dimension: 8})
	if err != nil {
		t.Fatal(err)
	}
	var recs []rag.Record
	for i := range 5 {
		recs = append(recs, rag.Record{ID: fmt.Sprint("r", i), Document: "d", Embedding: ragtest.Unit(8, i, i+1, 0.1)})
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, []string{"r0"}); err != nil {
		t.Fatal(err)
	}
	n, _ := s.Count(ctx)
	info, err = chromem.Stat(chromem.Config{Path: dir, Dimension: 8})
	if err != nil || info.Records != n || n != 4 || info.Dimension != 8 || info.Collection != chromem.DefaultCollection {
		t.Fatalf("Stat: %+v, %v; the store counts %d", info, err, n)
	}
	if _, err := chromem.Stat(chromem.Config{Path: dir, Dimension: 16}); !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "dimension") {
		t.Fatalf("Stat with another dimension: %v", err)
	}
	if _, err := chromem.Stat(chromem.Config{Path: filepath.Join(dir, "missing"), Dimension: 8}); err == nil {
		t.Fatal("Stat of a missing directory succeeded")
	}
}
