package chroma_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chroma"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

var seq atomic.Int64

// open returns a store on a fresh collection that is dropped after the test.
func open(t *testing.T, url string, dim int) (rag.Store, string) {
	t.Helper()
	name := fmt.Sprintf("talos_test_%d_%d", time.Now().UnixNano(), seq.Add(1))
	ctx := context.Background()
	s, err := chroma.Open(ctx, chroma.Config{URL: url, Collection: name, Dimension: dim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Close()
		_ = chroma.DeleteCollection(context.Background(), url, name)
	})
	return s, name
}

func TestConformance(t *testing.T) {
	url := testenv.ChromaURL(t)
	ragtest.RunStore(t, func(t *testing.T, dim int) rag.Store {
		s, _ := open(t, url, dim)
		return s
	})
}

func TestDimensionMismatchAtOpen(t *testing.T) {
	url := testenv.ChromaURL(t)
	ctx := context.Background()
	s, name := open(t, url, 8)
	if err := s.Upsert(ctx, []rag.Record{{ID: "a", Embedding: ragtest.Unit(8, 0, 1, .2)}}); err != nil {
		t.Fatal(err)
	}
	_, err := chroma.Open(ctx, chroma.Config{URL: url, Collection: name, Dimension: 16})
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("open with another dimension = %v, want T010", err)
	}
	s2, err := chroma.Open(ctx, chroma.Config{URL: url, Collection: name, Dimension: 8})
	if err != nil {
		t.Fatalf("reopen with the same dimension: %v", err)
	}
	_ = s2.Close()
}

func TestUnreachable(t *testing.T) {
	_, err := chroma.Open(context.Background(), chroma.Config{URL: "http://127.0.0.1:1", Timeout: time.Second})
	if !errors.Is(err, talos.ErrChroma) {
		t.Fatalf("open of an unreachable server = %v, want T002", err)
	}
	if _, err := chroma.Open(context.Background(), chroma.Config{}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("open without URL = %v, want T010", err)
	}
}
