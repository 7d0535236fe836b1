package chroma_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
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

// The adapter's collections use the cosine space (the server says so in
// the collection's configuration), and a collection made with another
// space is refused at Open: similarity is cosine on every backend.
func TestCollectionSpaceIsCosine(t *testing.T) {
	url := testenv.ChromaURL(t)
	ctx := context.Background()
	_, name := open(t, url, 8)
	base := url + "/api/v2/tenants/default_tenant/databases/default_database/collections"
	resp, err := http.Get(base + "/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Configuration struct {
			HNSW struct {
				Space string `json:"space"`
			} `json:"hnsw"`
		} `json:"configuration_json"`
	}
	err = json.NewDecoder(resp.Body).Decode(&got)
	resp.Body.Close()
	if err != nil || got.Configuration.HNSW.Space != "cosine" {
		t.Fatalf("collection space = %q, %v; want cosine", got.Configuration.HNSW.Space, err)
	}

	l2 := fmt.Sprintf("talos_test_l2_%d", time.Now().UnixNano())
	body := fmt.Sprintf(`{"name":%q,"configuration":{"hnsw":{"space":"l2"}}}`, l2)
	resp, err = http.Post(base, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("creating an l2 collection: HTTP %d", resp.StatusCode)
	}
	t.Cleanup(func() { _ = chroma.DeleteCollection(context.Background(), url, l2) })
	_, err = chroma.Open(ctx, chroma.Config{URL: url, Collection: l2, Dimension: 8})
	if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), `"l2"`) {
		t.Fatalf("open of an l2 collection = %v, want T010 naming the space", err)
	}
}
