package hashembed_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
)

func norm(v []float32) float64 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	return math.Sqrt(n)
}

func TestDeterministicAndNormalised(t *testing.T) {
	e, err := hashembed.New(hashembed.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if e.Dimension() != 384 || e.Name() != "hashembed-384" {
		t.Fatalf("defaults: %d %s", e.Dimension(), e.Name())
	}
	a := e.Vector("The quick brown fox")
	b := e.Vector("the QUICK, brown fox!")
	if len(a) != 384 {
		t.Fatalf("len = %d", len(a))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("case and punctuation changed the vector at %d", i)
		}
	}
	if math.Abs(norm(a)-1) > 1e-6 {
		t.Fatalf("norm = %v", norm(a))
	}
	// Golden: the hash is part of the on-disk format (stored vectors must
	// stay comparable with new queries), so it must never change silently.
	e8, _ := hashembed.New(hashembed.Config{Dimension: 8})
	got := fmt.Sprintf("%.4f", e8.Vector("hello world"))
	const want = "[0.6455 -0.1291 0.0000 0.2582 -0.6455 -0.1291 0.0000 0.2582]"
	if got != want {
		t.Fatalf("golden vector changed:\n got %s\nwant %s", got, want)
	}
}

func TestLexicalSimilarity(t *testing.T) {
	e, _ := hashembed.New(hashembed.Config{})
	q := e.Vector("how do I restart the docker daemon")
	near := e.Vector("restart the docker daemon with systemctl")
	far := e.Vector("chocolate cake recipe with berries")
	if sn, sf := rag.Cosine(q, near), rag.Cosine(q, far); sn <= sf+0.2 {
		t.Fatalf("shared words must be closer: near %.3f far %.3f", sn, sf)
	}
	// Trigrams make inflections close: "restarting" vs "restart".
	if s := rag.Cosine(e.Vector("restarting"), e.Vector("restart")); s < 0.25 {
		t.Fatalf("restarting~restart = %.3f, want ≥ 0.25", s)
	}
	if s := rag.Cosine(e.Vector("car"), e.Vector("automobile")); s > 0.3 {
		t.Fatalf("lexical embedder claims car~automobile = %.3f", s)
	}
}

func TestEmptyAndBadConfig(t *testing.T) {
	e, _ := hashembed.New(hashembed.Config{Dimension: 16})
	v := e.Vector("  ... ")
	if math.Abs(norm(v)-1) > 1e-6 {
		t.Fatalf("empty text norm = %v; it must be a unit vector", norm(v))
	}
	if _, err := hashembed.New(hashembed.Config{Dimension: 4}); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("dimension 4 = %v, want T010", err)
	}
	out, err := e.Embed(context.Background(), []string{"a", "b c"})
	if err != nil || len(out) != 2 || len(out[1]) != 16 {
		t.Fatalf("Embed = %v, %v", out, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := e.Embed(ctx, []string{"x"}); err == nil {
		t.Fatal("a cancelled context must stop Embed")
	}
}

func FuzzVector(f *testing.F) {
	for _, s := range []string{"", "hello", "ünïcödé テキスト", "a\x00b", "   ", "1 2 3"} {
		f.Add(s)
	}
	e, _ := hashembed.New(hashembed.Config{Dimension: 32})
	f.Fuzz(func(t *testing.T, s string) {
		v := e.Vector(s)
		if len(v) != 32 {
			t.Fatalf("len %d", len(v))
		}
		if n := norm(v); math.IsNaN(n) || math.Abs(n-1) > 1e-5 {
			t.Fatalf("norm %v for %q", n, s)
		}
	})
}

func ExampleEmbedder_Vector() {
	e, _ := hashembed.New(hashembed.Config{})
	q := e.Vector("restart the docker daemon")
	fmt.Printf("related:   %.2f\n", rag.Cosine(q, e.Vector("how to restart docker")))
	fmt.Printf("unrelated: %.2f\n", rag.Cosine(q, e.Vector("chocolate cake recipe")))
	// Output:
	// related:   0.48
	// unrelated: 0.02
}
