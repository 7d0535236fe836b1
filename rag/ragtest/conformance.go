package ragtest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// ConformanceDim is the embedding dimension the store suite uses.
const ConformanceDim = 8

// NewStoreFunc opens a fresh, empty store of dimension dim for one subtest.
type NewStoreFunc func(t *testing.T, dim int) rag.Store

// Unit returns a unit vector of dimension dim pointing mostly along axis i,
// with a small component along axis j (so vectors of nearby axes are
// similar but not identical).
func Unit(dim, i, j int, w float32) []float32 {
	v := make([]float32, dim)
	v[i%dim] = 1
	v[j%dim] += w
	return rag.Normalize(v)
}

// RunStore runs the conformance suite every rag.Store must pass.
func RunStore(t *testing.T, newStore NewStoreFunc) {
	ctx := context.Background()
	const dim = ConformanceDim

	t.Run("RoundTrip", func(t *testing.T) {
		s := newStore(t, dim)
		if got := s.Dimension(); got != dim {
			t.Fatalf("Dimension() = %d, want %d", got, dim)
		}
		md := rag.Metadata{"s": "text", "i": int64(42), "big": int64(1_763_900_000_123), "f": 0.25, "b": true, "neg": int64(-3)}
		in := rag.Record{ID: "a", Document: "alpha document", Embedding: Unit(dim, 0, 1, 0.5), Metadata: md}
		if err := s.Upsert(ctx, []rag.Record{in}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, []string{"a", "missing"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 {
			t.Fatalf("Get returned %d records, want 1", len(got))
		}
		assertRecord(t, got[0], in)
		if n := mustCount(t, s); n != 1 {
			t.Fatalf("Count = %d, want 1", n)
		}
		// Upsert replaces.
		in2 := rag.Record{ID: "a", Document: "alpha v2", Embedding: Unit(dim, 2, 3, 0.1), Metadata: rag.Metadata{"s": "v2"}}
		if err := s.Upsert(ctx, []rag.Record{in2}); err != nil {
			t.Fatal(err)
		}
		got = mustGet(t, s, []string{"a"})
		if len(got) != 1 {
			t.Fatalf("after replace Get returned %d records", len(got))
		}
		assertRecord(t, got[0], in2)
		if n := mustCount(t, s); n != 1 {
			t.Fatalf("Count after replace = %d, want 1", n)
		}
	})

	t.Run("Query", func(t *testing.T) {
		s := newStore(t, dim)
		empty, err := s.Query(ctx, Unit(dim, 0, 0, 0), 5, nil)
		if err != nil || len(empty) != 0 {
			t.Fatalf("query of an empty store = %v, %v; want no results and no error", empty, err)
		}
		var recs []rag.Record
		for i := 0; i < dim; i++ {
			recs = append(recs, rag.Record{ID: fmt.Sprintf("r%d", i), Document: fmt.Sprintf("doc %d", i),
				Embedding: Unit(dim, i, i+1, 0.3), Metadata: rag.Metadata{"n": int64(i), "even": i%2 == 0}})
		}
		mustUpsert(t, s, recs)
		q := Unit(dim, 3, 3, 0)
		res, err := s.Query(ctx, q, 3, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != 3 {
			t.Fatalf("Query n=3 returned %d", len(res))
		}
		if res[0].ID != "r3" {
			t.Fatalf("nearest = %s, want r3", res[0].ID)
		}
		if res[1].ID != "r2" { // r2 = axis 2 + 0.3·axis 3
			t.Fatalf("second = %s, want r2", res[1].ID)
		}
		want := rag.Cosine(q, recs[3].Embedding)
		if math.Abs(res[0].Similarity-want) > 1e-4 {
			t.Fatalf("similarity = %v, want cosine %v", res[0].Similarity, want)
		}
		for i := 1; i < len(res); i++ {
			if res[i].Similarity > res[i-1].Similarity+1e-9 {
				t.Fatalf("results not sorted by similarity: %v", res)
			}
		}
		if len(res[0].Embedding) != dim || len(res[0].Metadata) == 0 || res[0].Document != "doc 3" {
			t.Fatalf("query result lacks embedding, metadata or document: %+v", res[0])
		}
		all, err := s.Query(ctx, q, 100, nil)
		if err != nil || len(all) != dim {
			t.Fatalf("Query n=100 over %d records = %d, %v", dim, len(all), err)
		}
		f := rag.Eq("even", true)
		res, err = s.Query(ctx, q, 10, &f)
		if err != nil {
			t.Fatal(err)
		}
		if len(res) != dim/2 || res[0].ID != "r2" && res[0].ID != "r4" {
			t.Fatalf("filtered query = %v", ids(matchRecs(res)))
		}
		for _, m := range res {
			if m.Metadata["even"] != true {
				t.Fatalf("filter leaked %s", m.ID)
			}
		}
		if _, err := s.Query(ctx, q, 0, nil); err == nil {
			t.Fatal("Query n=0 must fail")
		}
	})

	t.Run("Filters", func(t *testing.T) {
		s := newStore(t, dim)
		mustUpsert(t, s, []rag.Record{
			{ID: "a", Embedding: Unit(dim, 0, 1, .1), Document: "apple pie", Metadata: rag.Metadata{"kind": "fruit", "n": int64(1), "w": 0.5, "ok": true}},
			{ID: "b", Embedding: Unit(dim, 1, 2, .1), Document: "banana split", Metadata: rag.Metadata{"kind": "fruit", "n": int64(5), "w": 1.5, "ok": false}},
			{ID: "c", Embedding: Unit(dim, 2, 3, .1), Document: "carrot cake", Metadata: rag.Metadata{"kind": "veg", "n": int64(10), "w": 2.5, "ok": true}},
			{ID: "d", Embedding: Unit(dim, 3, 4, .1), Document: "date bread", Metadata: rag.Metadata{"kind": "veg", "n": int64(20), "w": 3.5, "ok": false}},
			// e and f lack the filtered keys: e has other metadata, f none.
			{ID: "e", Embedding: Unit(dim, 4, 5, .1), Document: "elderberry wine", Metadata: rag.Metadata{"other": "x"}},
			{ID: "f", Embedding: Unit(dim, 5, 6, .1), Document: "fig roll"},
		})
		cases := []struct {
			name string
			f    rag.Filter
			want []string
		}{
			// A record without the key never matches $eq, $in or a range,
			// and always matches $ne and $nin (Chroma's and MongoDB's
			// semantics: a missing value is "not equal").
			{"eq string", rag.Eq("kind", "fruit"), []string{"a", "b"}},
			{"eq int", rag.Eq("n", 10), []string{"c"}},
			{"eq bool", rag.Eq("ok", true), []string{"a", "c"}},
			{"ne string", rag.Ne("kind", "fruit"), []string{"c", "d", "e", "f"}},
			{"ne int", rag.Ne("n", 5), []string{"a", "c", "d", "e", "f"}},
			{"ne float", rag.Ne("w", 0.5), []string{"b", "c", "d", "e", "f"}},
			{"ne bool", rag.Ne("ok", true), []string{"b", "d", "e", "f"}},
			{"gt int", rag.Gt("n", 5), []string{"c", "d"}},
			{"gte int", rag.Gte("n", 5), []string{"b", "c", "d"}},
			{"lt int", rag.Lt("n", 10), []string{"a", "b"}},
			{"lte int", rag.Lte("n", 10), []string{"a", "b", "c"}},
			{"gt float", rag.Gt("w", 1.5), []string{"c", "d"}},
			{"gte float", rag.Gte("w", 1.5), []string{"b", "c", "d"}},
			{"lt float", rag.Lt("w", 2), []string{"a", "b"}},
			{"lte float", rag.Lte("w", 0.5), []string{"a"}},
			{"in string", rag.In("kind", "veg", "nut"), []string{"c", "d"}},
			{"in int", rag.In("n", 1, 20), []string{"a", "d"}},
			{"in bool", rag.In("ok", false), []string{"b", "d"}},
			{"nin", rag.Nin("kind", "veg"), []string{"a", "b", "e", "f"}},
			{"nin int", rag.Nin("n", 1, 20), []string{"b", "c", "e", "f"}},
			{"nin bool", rag.Nin("ok", true), []string{"b", "d", "e", "f"}},
			{"and", rag.And(rag.Eq("kind", "veg"), rag.Lt("n", 15)), []string{"c"}},
			{"or", rag.Or(rag.Eq("n", 1), rag.Eq("kind", "veg")), []string{"a", "c", "d"}},
			{"and of or", rag.And(rag.Or(rag.Eq("n", 1), rag.Eq("n", 20)), rag.Eq("ok", false)), []string{"d"}},
			{"and with ne", rag.And(rag.Ne("kind", "veg"), rag.Eq("other", "x")), []string{"e"}},
			{"or with nin", rag.Or(rag.Nin("kind", "fruit", "veg"), rag.Eq("n", 1)), []string{"a", "e", "f"}},
			{"missing key eq", rag.Eq("nope", "x"), nil},
			{"missing key gt", rag.Gt("nope", 0), nil},
			{"missing key in", rag.In("nope", "x"), nil},
			{"missing key ne", rag.Ne("nope", "x"), []string{"a", "b", "c", "d", "e", "f"}},
			{"missing key nin", rag.Nin("nope", "x", "y"), []string{"a", "b", "c", "d", "e", "f"}},
		}
		for _, c := range cases {
			f := c.f
			got, err := s.List(ctx, rag.ListOptions{Where: &f})
			if err != nil {
				t.Fatalf("%s: List: %v", c.name, err)
			}
			if g := ids(got); !equalStrings(g, c.want) {
				t.Errorf("%s: List = %v, want %v", c.name, g, c.want)
			}
			res, err := s.Query(ctx, Unit(dim, 0, 0, 0), 10, &f)
			if err != nil {
				t.Fatalf("%s: Query: %v", c.name, err)
			}
			if g := ids(matchRecs(res)); !equalStrings(g, c.want) {
				t.Errorf("%s: Query = %v, want %v", c.name, g, c.want)
			}
		}
		got, err := s.List(ctx, rag.ListOptions{Contains: "an"})
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(got); !equalStrings(g, []string{"b"}) {
			t.Errorf("Contains \"an\" = %v, want [b]", g)
		}
		// Contains is case-sensitive; ContainsFold is not, and quotes the
		// substring (no regular-expression metacharacters leak through).
		mustUpsert(t, s, []rag.Record{
			{ID: "g", Embedding: Unit(dim, 6, 7, .1), Document: "Docker Restart Notes (v2.1) — Ärger mit DOCKER", Metadata: rag.Metadata{"kind": "note"}},
		})
		for _, c := range []struct {
			sub  string
			fold bool
			want []string
		}{
			{"docker", false, nil},
			{"Docker", false, []string{"g"}},
			{"docker", true, []string{"g"}},
			{"restart notes", true, []string{"g"}},
			{"DOCKER RESTART", true, []string{"g"}},
			{"ärger", true, []string{"g"}},
			{"(V2.1)", true, []string{"g"}},
			{"v2x1", true, nil}, // '.' is a literal dot
			{"APPLE", true, []string{"a"}},
			{"APPLE", false, nil},
			{"e", true, []string{"a", "c", "d", "e", "g"}},
		} {
			got, err := s.List(ctx, rag.ListOptions{Contains: c.sub, ContainsFold: c.fold})
			if err != nil {
				t.Fatalf("Contains %q fold %v: %v", c.sub, c.fold, err)
			}
			if g := ids(got); !equalStrings(g, c.want) {
				t.Errorf("Contains %q fold %v = %v, want %v", c.sub, c.fold, g, c.want)
			}
		}
		f := rag.Eq("kind", "note")
		if got, err := s.List(ctx, rag.ListOptions{Where: &f, Contains: "notes", ContainsFold: true, Limit: 5}); err != nil || !equalStrings(ids(got), []string{"g"}) {
			t.Errorf("ContainsFold with a filter = %v, %v; want [g]", ids(got), err)
		}
		bad := rag.Filter{Op: "$regex", Key: "kind", Value: "x"}
		if _, err := s.List(ctx, rag.ListOptions{Where: &bad}); err == nil {
			t.Error("an unknown operator must be an error")
		}
	})

	// Every store keeps embeddings L2-normalised (rag.Store): a non-unit
	// vector comes back as its unit vector from Get, List and Query, a unit
	// vector read back and written again is stored bit for bit the same (the
	// archive → restore round-trip), and a zero vector is refused.
	t.Run("Normalisation", func(t *testing.T) {
		s := newStore(t, dim)
		raw := make([]float32, dim)
		raw[0], raw[1], raw[dim-1] = 3, 4, 12 // norm 13
		want := rag.Normalize(raw)
		big := make([]float32, dim)
		for i := range big {
			big[i] = float32(i+1) * 0.37 // not unit, like a Gemini vector
		}
		mustUpsert(t, s, []rag.Record{
			{ID: "raw", Document: "raw", Embedding: raw, Metadata: rag.Metadata{"k": "v"}},
			{ID: "big", Document: "big", Embedding: big},
		})
		got, err := s.Get(ctx, []string{"raw", "big"})
		if err != nil || len(got) != 2 {
			t.Fatalf("Get = %d records, %v", len(got), err)
		}
		sort.Slice(got, func(i, j int) bool { return got[i].ID > got[j].ID })
		assertRecord(t, got[0], rag.Record{ID: "raw", Document: "raw", Embedding: want, Metadata: rag.Metadata{"k": "v"}})
		assertRecord(t, got[1], rag.Record{ID: "big", Document: "big", Embedding: rag.Normalize(big), Metadata: rag.Metadata{}})
		listed, err := s.List(ctx, rag.ListOptions{Embeddings: true, Where: ptr(rag.Eq("k", "v"))})
		if err != nil || len(listed) != 1 {
			t.Fatalf("List = %d records, %v", len(listed), err)
		}
		assertRecord(t, listed[0], rag.Record{ID: "raw", Document: "raw", Embedding: want, Metadata: rag.Metadata{"k": "v"}})
		q := make([]float32, dim)
		q[1] = 10 // not unit either
		res, err := s.Query(ctx, q, 1, nil)
		if err != nil || len(res) != 1 {
			t.Fatalf("Query = %v, %v", res, err)
		}
		if res[0].ID != "raw" || math.Abs(res[0].Similarity-rag.Cosine(q, raw)) > 1e-4 {
			t.Fatalf("Query = %s at %v, want raw at cosine %v", res[0].ID, res[0].Similarity, rag.Cosine(q, raw))
		}
		assertRecord(t, res[0].Record, rag.Record{ID: "raw", Document: "raw", Embedding: want, Metadata: rag.Metadata{"k": "v"}})

		// Write back what was read (as Restore does): the same bits.
		back := rag.Record{ID: "again", Document: "raw", Embedding: got[0].Embedding}
		mustUpsert(t, s, []rag.Record{back})
		again := mustGet(t, s, []string{"again"})
		if len(again) != 1 {
			t.Fatal("the rewritten record is missing")
		}
		for i := range back.Embedding {
			if again[0].Embedding[i] != back.Embedding[i] {
				t.Fatalf("rewriting a stored unit vector changed value %d: %v → %v", i, back.Embedding[i], again[0].Embedding[i])
			}
		}

		err = s.Upsert(ctx, []rag.Record{{ID: "ok", Embedding: Unit(dim, 0, 1, .2)}, {ID: "zero-vec", Embedding: make([]float32, dim)}})
		if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "zero-vec") {
			t.Fatalf("upsert of an all-zero embedding = %v, want T010 naming zero-vec", err)
		}
		if n := mustCount(t, s); n != 3 {
			t.Fatalf("Count after a refused upsert = %d, want 3 (nothing of it stored)", n)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		s := newStore(t, dim)
		var recs []rag.Record
		for i := 0; i < 23; i++ {
			recs = append(recs, rag.Record{ID: fmt.Sprintf("p%02d", i), Document: fmt.Sprintf("page doc %d", i),
				Embedding: Unit(dim, i, i+3, 0.2), Metadata: rag.Metadata{"i": int64(i), "odd": i%2 == 1}})
		}
		mustUpsert(t, s, recs)
		seen := map[string]int{}
		for off := 0; ; off += 5 {
			page, err := s.List(ctx, rag.ListOptions{Offset: off, Limit: 5})
			if err != nil {
				t.Fatal(err)
			}
			if len(page) > 5 {
				t.Fatalf("page of %d > limit 5", len(page))
			}
			for _, r := range page {
				seen[r.ID]++
				if r.Embedding != nil {
					t.Fatalf("List without Embeddings returned an embedding for %s", r.ID)
				}
				if r.Document == "" || r.Metadata == nil {
					t.Fatalf("List lost document or metadata of %s", r.ID)
				}
			}
			if len(page) < 5 {
				break
			}
		}
		if len(seen) != 23 {
			t.Fatalf("paging visited %d distinct ids, want 23", len(seen))
		}
		for id, n := range seen {
			if n != 1 {
				t.Fatalf("paging visited %s %d times", id, n)
			}
		}
		all := mustList(t, s, rag.ListOptions{})
		if len(all) != 23 {
			t.Fatalf("List with no limit = %d, want 23", len(all))
		}
		f := rag.Eq("odd", true)
		n := 0
		for off := 0; ; off += 4 {
			page, err := s.List(ctx, rag.ListOptions{Where: &f, Offset: off, Limit: 4, Embeddings: true})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				if len(r.Embedding) != dim {
					t.Fatalf("List with Embeddings returned %d values", len(r.Embedding))
				}
			}
			n += len(page)
			if len(page) < 4 {
				break
			}
		}
		if n != 11 {
			t.Fatalf("filtered paging = %d records, want 11", n)
		}
		past, err := s.List(ctx, rag.ListOptions{Offset: 100, Limit: 5})
		if err != nil || len(past) != 0 {
			t.Fatalf("page past the end = %d, %v", len(past), err)
		}
	})

	t.Run("DeleteAndCount", func(t *testing.T) {
		s := newStore(t, dim)
		var recs []rag.Record
		for i := 0; i < 10; i++ {
			recs = append(recs, rag.Record{ID: fmt.Sprintf("d%d", i), Embedding: Unit(dim, i, i+1, 0.2),
				Document: "x", Metadata: rag.Metadata{"priority": map[bool]string{true: "temporary", false: "normal"}[i < 4], "i": int64(i)}})
		}
		mustUpsert(t, s, recs)
		if err := s.Delete(ctx, []string{"d9", "d8", "unknown"}); err != nil {
			t.Fatal(err)
		}
		if n := mustCount(t, s); n != 8 {
			t.Fatalf("Count after deleting 2 = %d", n)
		}
		if got := mustGet(t, s, []string{"d9", "d8"}); len(got) != 0 {
			t.Fatalf("deleted records still readable: %v", ids(got))
		}
		n, err := s.DeleteWhere(ctx, rag.And(rag.Eq("priority", "temporary"), rag.Lt("i", 3)))
		if err != nil {
			t.Fatal(err)
		}
		if n != 3 {
			t.Fatalf("DeleteWhere removed %d, want 3", n)
		}
		left := mustList(t, s, rag.ListOptions{})
		if g := ids(left); !equalStrings(g, []string{"d3", "d4", "d5", "d6", "d7"}) {
			t.Fatalf("left after DeleteWhere = %v", g)
		}
		n, err = s.DeleteWhere(ctx, rag.Eq("priority", "nothing"))
		if err != nil || n != 0 {
			t.Fatalf("DeleteWhere of nothing = %d, %v", n, err)
		}
		if err := s.Delete(ctx, nil); err != nil {
			t.Fatalf("Delete of no ids = %v", err)
		}
	})

	t.Run("UpdateMetadata", func(t *testing.T) {
		s := newStore(t, dim)
		emb := Unit(dim, 1, 2, 0.4)
		mustUpsert(t, s, []rag.Record{{ID: "u", Document: "keep me", Embedding: emb,
			Metadata: rag.Metadata{"access_count": int64(1), "priority": "high", "f": 0.5}}})
		err := s.UpdateMetadata(ctx, map[string]rag.Metadata{
			"u":       {"access_count": int64(2), "last_accessed_at": int64(1_763_900_000_999)},
			"missing": {"access_count": int64(9)},
		})
		if err != nil {
			t.Fatal(err)
		}
		got := mustGet(t, s, []string{"u", "missing"})
		if len(got) != 1 {
			t.Fatalf("UpdateMetadata must not create records: got %v", ids(got))
		}
		assertRecord(t, got[0], rag.Record{ID: "u", Document: "keep me", Embedding: emb, Metadata: rag.Metadata{
			"access_count": int64(2), "priority": "high", "f": 0.5, "last_accessed_at": int64(1_763_900_000_999)}})
	})

	t.Run("Concurrent", func(t *testing.T) {
		s := newStore(t, dim)
		mustUpsert(t, s, []rag.Record{{ID: "seed", Document: "seed", Embedding: Unit(dim, 0, 1, 0.1)}})
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := 0; i < 5; i++ {
					id := fmt.Sprintf("w%d-%d", w, i)
					if err := s.Upsert(ctx, []rag.Record{{ID: id, Document: id, Embedding: Unit(dim, w, i, 0.3), Metadata: rag.Metadata{"w": int64(w)}}}); err != nil {
						errs <- err
						return
					}
					if _, err := s.Query(ctx, Unit(dim, i, w, 0.2), 3, nil); err != nil {
						errs <- err
						return
					}
					if err := s.UpdateMetadata(ctx, map[string]rag.Metadata{"seed": {"n": int64(i)}}); err != nil {
						errs <- err
						return
					}
				}
			}(w)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n := mustCount(t, s); n != 21 {
			t.Fatalf("Count after concurrent upserts = %d, want 21", n)
		}
	})

	t.Run("Validation", func(t *testing.T) {
		s := newStore(t, dim)
		err := s.Upsert(ctx, []rag.Record{{ID: "x", Embedding: make([]float32, dim+1)}})
		if !errors.Is(err, talos.ErrConfigInvalid) {
			t.Fatalf("upsert of a %d-dim vector into a %d-dim store = %v, want T010", dim+1, dim, err)
		}
		if _, err := s.Query(ctx, make([]float32, dim-1), 3, nil); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Fatalf("query with a %d-dim vector = %v, want T010", dim-1, err)
		}
		if err := s.Upsert(ctx, []rag.Record{{ID: "", Embedding: Unit(dim, 0, 0, 0)}}); err == nil {
			t.Fatal("an empty id must be rejected")
		}
		if err := s.Upsert(ctx, []rag.Record{{ID: "m", Embedding: Unit(dim, 0, 0, 0), Metadata: rag.Metadata{"x": []int{1}}}}); err == nil {
			t.Fatal("a slice metadata value must be rejected")
		}
		if n := mustCount(t, s); n != 0 {
			t.Fatalf("rejected upserts stored %d records", n)
		}
	})
}

func ptr(f rag.Filter) *rag.Filter { return &f }

func mustUpsert(t *testing.T, s rag.Store, recs []rag.Record) {
	t.Helper()
	if err := s.Upsert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func matchRecs(ms []rag.Match) []rag.Record {
	out := make([]rag.Record, len(ms))
	for i, m := range ms {
		out[i] = m.Record
	}
	return out
}

func ids(recs []rag.Record) []string {
	out := make([]string, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ID)
	}
	sort.Strings(out)
	return out
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// assertRecord compares a stored record with the one written: id, document,
// embedding (within 1e-6) and metadata (int64 and float64 compared by value).
func assertRecord(t *testing.T, got, want rag.Record) {
	t.Helper()
	if got.ID != want.ID || got.Document != want.Document {
		t.Fatalf("record = %q/%q, want %q/%q", got.ID, got.Document, want.ID, want.Document)
	}
	if len(got.Embedding) != len(want.Embedding) {
		t.Fatalf("embedding of %s has %d values, want %d", got.ID, len(got.Embedding), len(want.Embedding))
	}
	for i := range want.Embedding {
		if math.Abs(float64(got.Embedding[i]-want.Embedding[i])) > 1e-6 {
			t.Fatalf("embedding of %s differs at %d: %v vs %v", got.ID, i, got.Embedding[i], want.Embedding[i])
		}
	}
	if err := SameMetadata(got.Metadata, want.Metadata); err != nil {
		t.Fatalf("metadata of %s: %v", got.ID, err)
	}
}

// SameMetadata reports the first difference between two metadata maps, with
// exact types: an int64 must come back as an int64, a float64 as a float64.
func SameMetadata(got, want rag.Metadata) error {
	if len(got) != len(want) {
		return fmt.Errorf("got %d keys %v, want %d keys %v", len(got), got, len(want), want)
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			return fmt.Errorf("key %q missing", k)
		}
		if wi, ok := w.(int); ok {
			w = int64(wi)
		}
		if fmt.Sprintf("%T", g) != fmt.Sprintf("%T", w) || g != w {
			return fmt.Errorf("key %q = %v (%T), want %v (%T)", k, g, g, w, w)
		}
	}
	return nil
}

// mustGet, mustList and mustCount fail the test on an error instead of
// letting the suite go on with results that are not there.
func mustGet(t *testing.T, s rag.Store, ids []string) []rag.Record {
	t.Helper()
	got, err := s.Get(context.Background(), ids)
	if err != nil {
		t.Fatalf("Get(%v): %v", ids, err)
	}
	return got
}

func mustList(t *testing.T, s rag.Store, opts rag.ListOptions) []rag.Record {
	t.Helper()
	got, err := s.List(context.Background(), opts)
	if err != nil {
		t.Fatalf("List(%+v): %v", opts, err)
	}
	return got
}

func mustCount(t *testing.T, s rag.Store) int {
	t.Helper()
	n, err := s.Count(context.Background())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	return n
}
