package prune_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chromem"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

const day = 24 * time.Hour

func near(a, b float64) bool { return math.Abs(a-b) < 1e-4 }

// The exact score formula and its test values.
func TestScoreGolden(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		age  time.Duration
		want float64
	}{{0, 1}, {30 * day, 0.5}, {60 * day, 0.25}, {-time.Hour, 1}} {
		if got := prune.AgeScore(now.Add(-c.age), now); !near(got, c.want) {
			t.Errorf("AgeScore(%v) = %v, want %v", c.age, got, c.want)
		}
	}
	for _, c := range []struct {
		h    float64
		want float64
	}{{0, 1}, {1, 0.5906}, {24, 0.2370}, {168, 0.1631}, {720, 0.1319}, {-5, 1}} {
		got := prune.RecencyScore(now.Add(-time.Duration(c.h*float64(time.Hour))), now)
		if !near(got, c.want) {
			t.Errorf("RecencyScore(%vh) = %.4f, want %.4f", c.h, got, c.want)
		}
	}
	for _, c := range []struct {
		n    int64
		want float64
	}{{0, 0}, {1, 0.001}, {500, 0.5}, {1000, 1}, {5000, 1}, {-1, 0}} {
		if got := prune.FrequencyScore(c.n); !near(got, c.want) {
			t.Errorf("FrequencyScore(%d) = %v, want %v", c.n, got, c.want)
		}
	}
	for p, want := range map[rag.Priority]float64{"permanent": 1, "high": 0.9, "session": 0.5, "temporary": 0.1, "auto": 0.5, "weird": 0.5, "": 0.5, "normal": 0.5} {
		if got := prune.PriorityScore(p); got != want {
			t.Errorf("PriorityScore(%q) = %v, want %v", p, got, want)
		}
	}
	if w := prune.WeightFrequency + prune.WeightAge + prune.WeightPriority + prune.WeightRecency; !near(w, 1) {
		t.Fatalf("weights sum to %v", w)
	}
	// Worked examples: fresh auto, 0 accesses, just accessed → 0.525;
	// fresh permanent → 0.70.
	fresh := rag.Memory{CreatedAt: now, LastAccessedAt: now, Priority: rag.PriorityAuto}
	if got := prune.Score(fresh.Metadata(), now); !near(got, 0.525) {
		t.Fatalf("fresh auto = %v, want 0.525", got)
	}
	fresh.Priority = rag.PriorityPermanent
	if got := prune.Score(fresh.Metadata(), now); !near(got, 0.70) {
		t.Fatalf("fresh permanent = %v, want 0.70", got)
	}
	// 30 days old, 500 accesses, last access 24 h ago, high:
	// 0.30·0.5 + 0.25·0.5 + 0.35·0.9 + 0.10·0.2370.
	m := rag.Memory{CreatedAt: now.Add(-30 * day), LastAccessedAt: now.Add(-24 * time.Hour), AccessCount: 500, Priority: rag.PriorityHigh}
	if got := prune.Score(m.Metadata(), now); !near(got, 0.15+0.125+0.315+0.0237) {
		t.Fatalf("mixed = %v", got)
	}
}

// Protection: permanent never; younger than the guarantee never;
// unknown tags use 7 days.
func TestProtection(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		p    rag.Priority
		age  time.Duration
		want bool
	}{
		{rag.PriorityPermanent, 10000 * day, true},
		{rag.PriorityHigh, 364 * day, true}, {rag.PriorityHigh, 366 * day, false},
		{rag.PrioritySession, 29 * day, true}, {rag.PrioritySession, 31 * day, false},
		{rag.PriorityTemporary, 23 * time.Hour, true}, {rag.PriorityTemporary, 25 * time.Hour, false},
		{rag.PriorityAuto, 6 * day, true}, {rag.PriorityAuto, 8 * day, false},
		{"mystery", 6 * day, true}, {"mystery", 8 * day, false},
		{rag.PriorityNormal, 29 * day, true}, {rag.PriorityNormal, 31 * day, false},
	} {
		md := rag.Memory{Priority: c.p, CreatedAt: now.Add(-c.age)}.Metadata()
		if got := prune.Protected(md, now); got != c.want {
			t.Errorf("Protected(%s, %v) = %v, want %v", c.p, c.age, got, c.want)
		}
	}
}

// fill stores n records: id i has access_count i (so lower ids score
// lower), priority auto and an age of 10 days.
func fill(t testing.TB, s rag.Store, n int, mk func(i int) rag.Memory) {
	t.Helper()
	var recs []rag.Record
	for i := 0; i < n; i++ {
		recs = append(recs, rag.Record{ID: fmt.Sprintf("r%06d", i), Document: fmt.Sprintf("memory %d", i),
			Embedding: []float32{1, float32(i%7) + 1}, Metadata: mk(i).Metadata()})
		if len(recs) == 5000 {
			if err := s.Upsert(context.Background(), recs); err != nil {
				t.Fatal(err)
			}
			recs = nil
		}
	}
	if err := s.Upsert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
}

func oldAuto(i int) rag.Memory {
	at := time.Now().Add(-10 * day)
	return rag.Memory{CreatedAt: at, LastAccessedAt: at, AccessCount: int64(i), Priority: rag.PriorityAuto}
}

type countingStore struct {
	*ragtest.MemoryStore
	mu      sync.Mutex
	batches []int
}

func (c *countingStore) Delete(ctx context.Context, ids []string) error {
	c.mu.Lock()
	c.batches = append(c.batches, len(ids))
	c.mu.Unlock()
	return c.MemoryStore.Delete(ctx, ids)
}

// Pruning with hysteresis: 90% trigger, 80% target, exact counts, lowest
// first, ≤ 500.
func TestHysteresisAndExactCounts(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		count, deleted int
	}{{900, 0}, {901, 101}, {950, 150}, {1000, 200}, {850, 0}} {
		st := &countingStore{MemoryStore: ragtest.NewMemoryStore(2)}
		fill(t, st, c.count, oldAuto)
		p, err := prune.New(prune.Config{Ceiling: 1000, ArchivePath: filepath.Join(t.TempDir(), "a.jsonl"), BatchSize: 40}, st)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := p.Prune(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Deleted != c.deleted {
			t.Fatalf("count %d: deleted %d, want %d", c.count, rep.Deleted, c.deleted)
		}
		n, _ := st.Count(ctx)
		if c.deleted > 0 && n != 800 {
			t.Fatalf("count %d: %d left, want exactly 800", c.count, n)
		}
		for _, b := range st.batches {
			if b > 40 {
				t.Fatalf("batch of %d ids > 40", b)
			}
		}
		if c.deleted > 0 {
			// Lowest scores first: the records with the fewest accesses went.
			left, _ := st.List(ctx, rag.ListOptions{Limit: 1})
			if want := fmt.Sprintf("r%06d", c.deleted); left[0].ID != want {
				t.Fatalf("count %d: lowest remaining %s, want %s", c.count, left[0].ID, want)
			}
		} else if !strings.Contains(rep.Reason, "below threshold 900") {
			t.Fatalf("reason = %q", rep.Reason)
		}
	}
}

// The spec's own numbers at full scale: 95,000 of 100,000 → 15,000 deleted
// in batches of at most 500.
func TestSpecScale95000(t *testing.T) {
	if testing.Short() {
		t.Skip("full-scale prune skipped in -short")
	}
	ctx := context.Background()
	st := &countingStore{MemoryStore: ragtest.NewMemoryStore(2)}
	fill(t, st, 95_000, oldAuto)
	p, _ := prune.New(prune.Config{ArchivePath: filepath.Join(t.TempDir(), "a.jsonl")}, st)
	rep, err := p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 15_000 || rep.Trigger != 90_000 || rep.Target != 80_000 || len(st.batches) != 30 {
		t.Fatalf("deleted %d (trigger %d target %d) in %d batches; want 15000 in 30", rep.Deleted, rep.Trigger, rep.Target, len(st.batches))
	}
	for _, b := range st.batches {
		if b > 500 {
			t.Fatalf("batch of %d", b)
		}
	}
}

// Prune never deletes a permanent or protected record, even when the
// target cannot be reached.
func TestGuaranteesBeatTheTarget(t *testing.T) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(2)
	now := time.Now()
	fill(t, st, 1000, func(i int) rag.Memory {
		switch {
		case i < 850:
			return rag.Memory{CreatedAt: now.Add(-400 * day), Priority: rag.PriorityPermanent}
		case i < 950:
			return rag.Memory{CreatedAt: now.Add(-time.Hour), Priority: rag.PriorityAuto} // too young
		}
		return oldAuto(i)
	})
	p, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: filepath.Join(t.TempDir(), "a.jsonl")}, st)
	plan, _ := p.Plan(ctx)
	if !plan.Insufficient || plan.ToDelete != 200 || len(plan.Candidates) != 50 || plan.Protected != 950 {
		t.Fatalf("plan = %+v", plan)
	}
	rep, err := p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Deleted != 50 {
		t.Fatalf("deleted %d, want the 50 deletable", rep.Deleted)
	}
	left, _ := st.List(ctx, rag.ListOptions{})
	if len(left) != 950 {
		t.Fatalf("%d left", len(left))
	}
	for _, r := range left {
		if !prune.Protected(r.Metadata, now) {
			t.Fatalf("unprotected %s survived while protected ones were needed", r.ID)
		}
	}
}

func TestDryRunDeletesNothing(t *testing.T) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(2)
	fill(t, st, 950, oldAuto)
	archive := filepath.Join(t.TempDir(), "a.jsonl")
	p, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: archive}, st)
	rep, err := p.Run(ctx, prune.Params{TriggerRatio: 0.9, TargetRatio: 0.8}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.DryRun || rep.Deleted != 0 || len(rep.Candidates) != 150 || rep.Candidates[0].ID != "r000000" {
		t.Fatalf("dry run = %+v", rep.Plan)
	}
	if n, _ := st.Count(ctx); n != 950 {
		t.Fatalf("dry run deleted: %d left", n)
	}
	if _, err := os.Stat(archive); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("dry run wrote the archive")
	}
}

// Aggressive prune uses 0.80/0.80 without changing the pruner's defaults,
// also when run concurrently with a normal plan.
func TestAggressiveDoesNotMutateDefaults(t *testing.T) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(2)
	fill(t, st, 850, oldAuto)
	p, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: filepath.Join(t.TempDir(), "a.jsonl")}, st)
	var wg sync.WaitGroup
	var plan *prune.Plan
	wg.Add(1)
	go func() { defer wg.Done(); plan, _ = p.Plan(ctx) }()
	n, err := p.PruneAggressive(ctx)
	wg.Wait()
	if err != nil || n != 50 {
		t.Fatalf("aggressive deleted %d, %v; want 50 (850 → 800)", n, err)
	}
	if plan.Trigger != 900 {
		t.Fatalf("the normal trigger changed to %d", plan.Trigger)
	}
	after, _ := p.Plan(ctx)
	if after.Trigger != 900 || after.Target != 800 || after.Triggered {
		t.Fatalf("defaults after aggressive: %+v", after)
	}
}

// flakyStore fails the first Delete calls, or leaves ids behind.
type flakyStore struct {
	*ragtest.MemoryStore
	failures int
	sticky   map[string]bool // never actually deleted
}

func (f *flakyStore) Delete(ctx context.Context, ids []string) error {
	if f.failures > 0 {
		f.failures--
		return errors.New("chroma hiccup")
	}
	var del []string
	for _, id := range ids {
		if !f.sticky[id] {
			del = append(del, id)
		}
	}
	return f.MemoryStore.Delete(ctx, del)
}

// Retry with 1/2/4 s backoff (fake clock); failed_batches counts first-pass
// failures; a batch counts as deleted only when get(ids) is empty.
func TestRetryBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := &flakyStore{MemoryStore: ragtest.NewMemoryStore(2), failures: 2}
		fill(t, st, 950, oldAuto)
		p, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: filepath.Join(t.TempDir(), "a.jsonl")}, st)
		start := time.Now()
		rep, err := p.Prune(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if waited := time.Since(start); waited != 3*time.Second {
			t.Fatalf("waited %v, want 1 s + 2 s", waited)
		}
		if rep.Deleted != 150 || rep.FailedBatches != 1 {
			t.Fatalf("deleted %d, failed batches %d", rep.Deleted, rep.FailedBatches)
		}

		// Ids that never go: 3 retries (1+2+4 s), then T109 naming them.
		st2 := &flakyStore{MemoryStore: ragtest.NewMemoryStore(2), sticky: map[string]bool{"r000003": true}}
		fill(t, st2, 950, oldAuto)
		p2, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: filepath.Join(t.TempDir(), "b.jsonl")}, st2)
		start = time.Now()
		rep, err = p2.Prune(ctx)
		if !errors.Is(err, talos.ErrPruneFailed) {
			t.Fatalf("err = %v, want T109", err)
		}
		if waited := time.Since(start); waited != 7*time.Second {
			t.Fatalf("waited %v, want 1+2+4 s", waited)
		}
		if rep.Deleted != 149 || len(rep.Failed) != 1 || rep.Failed[0] != "r000003" {
			t.Fatalf("deleted %d failed %v", rep.Deleted, rep.Failed)
		}
	})
}

// Archive → restore round-trips ids, documents, embeddings and metadata on
// the in-memory store and on chromem. The embeddings are not unit length
// (like Gemini's): every store keeps them normalised, and a restore gives
// back exactly the vector that was stored before the prune.
func TestArchiveRestoreRoundTrip(t *testing.T) {
	for name, open := range map[string]func(t *testing.T) rag.Store{
		"memory": func(*testing.T) rag.Store { return ragtest.NewMemoryStore(3) },
		"chromem": func(t *testing.T) rag.Store {
			s, err := chromem.Open(chromem.Config{Path: t.TempDir(), Dimension: 3})
			if err != nil {
				t.Fatal(err)
			}
			return s
		},
	} {
		t.Run(name, func(t *testing.T) { testArchiveRestoreRoundTrip(t, open(t)) })
	}
}

func testArchiveRestoreRoundTrip(t *testing.T, st rag.Store) {
	ctx := context.Background()
	now := time.Now()
	at := now.Add(-20 * day).Truncate(time.Millisecond)
	var originals []rag.Record
	for i := 0; i < 12; i++ {
		md := rag.Memory{CreatedAt: at, LastAccessedAt: at, AccessCount: int64(i), Priority: rag.PriorityAuto,
			Source: rag.SourceWeb, Links: []string{"x", "y"}, SessionID: "s", Type: "note"}.Metadata()
		md["feedback"] = 2.0 // an integral float must stay a float
		md["weird key ü"] = "line\nbreak \"quoted\""
		originals = append(originals, rag.Record{ID: fmt.Sprintf("id-%02d", i), Document: fmt.Sprintf("doc %d ✓", i),
			Embedding: []float32{0.1 * float32(i+1), -0.5, 1e-7}, Metadata: md})
	}
	if err := st.Upsert(ctx, originals); err != nil {
		t.Fatal(err)
	}
	stored, _ := st.List(ctx, rag.ListOptions{Embeddings: true})
	sort.Slice(stored, func(i, j int) bool { return stored[i].ID < stored[j].ID })
	for i, r := range stored {
		want := rag.Normalize(originals[i].Embedding)
		for k := range want {
			if math.Abs(float64(r.Embedding[k]-want[k])) > 1e-6 {
				t.Fatalf("%s stored %v, want the unit vector %v", r.ID, r.Embedding, want)
			}
		}
	}
	archive := filepath.Join(t.TempDir(), "sub", "archive.jsonl")
	p, _ := prune.New(prune.Config{Ceiling: 10, TriggerRatio: 0.5, TargetRatio: 0.2, ArchivePath: archive}, st)
	rep, err := p.Prune(ctx)
	if err != nil || rep.Deleted != 10 {
		t.Fatalf("prune = %+v, %v", rep, err)
	}
	fi, err := os.Stat(archive)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("archive mode = %v, %v", fi, err)
	}
	res, err := p.Restore(ctx, prune.RestoreOptions{})
	if err != nil || res.Restored != 10 || res.Skipped != 0 {
		t.Fatalf("restore = %+v, %v", res, err)
	}
	got, _ := st.List(ctx, rag.ListOptions{Embeddings: true})
	if len(got) != 12 {
		t.Fatalf("%d records after restore", len(got))
	}
	sort.Slice(got, func(i, j int) bool { return got[i].ID < got[j].ID })
	for i, r := range got {
		o := originals[i]
		if r.ID != o.ID || r.Document != o.Document || fmt.Sprint(r.Embedding) != fmt.Sprint(stored[i].Embedding) {
			t.Fatalf("record %d: %+v != %+v (stored embedding %v)", i, r, o, stored[i].Embedding)
		}
		if err := ragtest.SameMetadata(r.Metadata, o.Metadata); err != nil {
			t.Fatalf("record %s: %v", r.ID, err)
		}
	}
	// A second restore skips what exists; Overwrite replaces.
	res, _ = p.Restore(ctx, prune.RestoreOptions{})
	if res.Restored != 0 || res.Skipped != 10 {
		t.Fatalf("second restore = %+v", res)
	}
	res, _ = p.Restore(ctx, prune.RestoreOptions{IDs: []string{"id-00"}, Overwrite: true})
	if res.Restored != 1 {
		t.Fatalf("restore one = %+v", res)
	}
}

func TestDeleteExpiredTemporary(t *testing.T) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(2)
	now := time.Now()
	fill(t, st, 6, func(i int) rag.Memory {
		return []rag.Memory{
			{Priority: rag.PriorityTemporary, CreatedAt: now.Add(-31 * day)},
			{Priority: rag.PriorityTemporary, CreatedAt: now.Add(-40 * day)},
			{Priority: rag.PriorityTemporary, CreatedAt: now.Add(-29 * day)},
			{Priority: rag.PriorityAuto, CreatedAt: now.Add(-90 * day)},
			{Priority: rag.PriorityPermanent, CreatedAt: now.Add(-90 * day)},
			{Priority: rag.PriorityTemporary, CreatedAt: now},
		}[i]
	})
	p, _ := prune.New(prune.Config{ArchivePath: filepath.Join(t.TempDir(), "a.jsonl")}, st)
	n, err := p.DeleteExpiredTemporary(ctx, 0)
	if err != nil || n != 2 {
		t.Fatalf("deleted %d, %v; want 2", n, err)
	}
	left, _ := st.List(ctx, rag.ListOptions{})
	if len(left) != 4 || left[0].ID != "r000002" {
		t.Fatalf("left = %v", left)
	}
}

func TestConfigAndArchiveRequired(t *testing.T) {
	st := ragtest.NewMemoryStore(2)
	for _, c := range []prune.Config{{BatchSize: 501}, {TriggerRatio: 1.5}, {TriggerRatio: 0.5, TargetRatio: 0.8}, {Ceiling: -1}} {
		if _, err := prune.New(c, st); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("New(%+v) = %v, want T010", c, err)
		}
	}
	fill(t, st, 950, oldAuto)
	p, _ := prune.New(prune.Config{Ceiling: 1000}, st)
	if _, err := p.Prune(context.Background()); !errors.Is(err, talos.ErrPruneFailed) {
		t.Fatalf("prune without an archive = %v, want T109", err)
	}
	if n, _ := st.Count(context.Background()); n != 950 {
		t.Fatal("deleted without an archive")
	}
}

func TestReadArchiveErrors(t *testing.T) {
	good := `{"v":1,"run":"r","pruned_at":1,"reason":"prune","score":0.1,"id":"a","document":"d","embedding":[1,2],"metadata":{"n":3,"f":1.0}}`
	var got []prune.Entry
	if err := prune.ReadArchive(strings.NewReader(good+"\n\n"+good+"\n"), func(e prune.Entry) error { got = append(got, e); return nil }); err != nil || len(got) != 2 {
		t.Fatalf("read = %d, %v", len(got), err)
	}
	if _, ok := got[0].Metadata["f"].(float64); !ok {
		t.Fatalf("1.0 decoded as %T", got[0].Metadata["f"])
	}
	if _, ok := got[0].Metadata["n"].(int64); !ok {
		t.Fatalf("3 decoded as %T", got[0].Metadata["n"])
	}
	for _, bad := range []string{`{"v":2,"id":"a","embedding":[1]}`, `{"v":1,"id":"","embedding":[1]}`, `{"v":1,"id":"a","embedding":[]}`, `not json`, `{"v":1,"id":"a","embedding":[1],"extra":1}`, `{"v":1,"id":"a","embedding":[1],"metadata":{"x":[1]}}`} {
		err := prune.ReadArchive(bytes.NewBufferString(good+"\n"+bad+"\n"), func(prune.Entry) error { return nil })
		if err == nil || !strings.Contains(err.Error(), "line 2") {
			t.Errorf("%s: err = %v, want an error on line 2", bad, err)
		}
	}
}

func FuzzParseEntry(f *testing.F) {
	f.Add([]byte(`{"v":1,"run":"r","pruned_at":1,"reason":"prune","score":0.1,"id":"a","document":"d","embedding":[1,2],"metadata":{"n":3,"f":1.5,"s":"x","b":true}}`))
	f.Add([]byte(`{"v":1,"id":"a","embedding":[1e39]}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, line []byte) {
		e, err := prune.ParseEntry(line)
		if err != nil {
			return
		}
		if e.ID == "" || len(e.Embedding) == 0 {
			t.Fatal("accepted an entry without id or embedding")
		}
		if err := e.Record().Metadata.Validate(); err != nil {
			t.Fatalf("accepted invalid metadata: %v", err)
		}
	})
}

// retagStore re-tags some records permanent right after the first List, as
// a concurrent writer would between a prune's plan and its deletes.
type retagStore struct {
	*ragtest.MemoryStore
	once  sync.Once
	retag []string
}

func (r *retagStore) List(ctx context.Context, opts rag.ListOptions) ([]rag.Record, error) {
	recs, err := r.MemoryStore.List(ctx, opts)
	r.once.Do(func() {
		up := map[string]rag.Metadata{}
		for _, id := range r.retag {
			up[id] = rag.Metadata{rag.KeyPriority: string(rag.PriorityPermanent)}
		}
		if uerr := r.MemoryStore.UpdateMetadata(ctx, up); uerr != nil {
			panic(uerr)
		}
	})
	return recs, err
}

// A record that becomes permanent after the plan read it is neither
// archived nor deleted: permanent is never deleted, even mid-prune.
func TestRetaggedPermanentDuringPruneSurvives(t *testing.T) {
	ctx := context.Background()
	st := &retagStore{MemoryStore: ragtest.NewMemoryStore(2), retag: []string{"r000000", "r000007"}}
	fill(t, st, 950, oldAuto)
	archive := filepath.Join(t.TempDir(), "a.jsonl")
	p, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: archive, BatchSize: 100}, st)
	rep, err := p.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Candidates) != 150 || rep.SkippedProtected != 2 || rep.Deleted != 148 {
		t.Fatalf("candidates %d, skipped %d, deleted %d; want 150, 2, 148", len(rep.Candidates), rep.SkippedProtected, rep.Deleted)
	}
	got, _ := st.Get(ctx, st.retag)
	if len(got) != 2 {
		t.Fatalf("re-tagged permanent records deleted: %d of 2 left", len(got))
	}
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	if err := prune.ReadArchive(f, func(e prune.Entry) error {
		n++
		if e.ID == "r000000" || e.ID == "r000007" {
			return fmt.Errorf("protected %s archived", e.ID)
		}
		return nil
	}); err != nil || n != 148 {
		t.Fatalf("archive: %d entries, %v; want 148", n, err)
	}
}

// A crash mid-append leaves a torn last line: Restore skips it (its records
// were never deleted) and says so, and the next prune cuts it off before
// appending so its own lines stay readable.
func TestTornArchiveTail(t *testing.T) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(2)
	fill(t, st, 950, oldAuto)
	archive := filepath.Join(t.TempDir(), "a.jsonl")
	p, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: archive}, st)
	if rep, err := p.Prune(ctx); err != nil || rep.Deleted != 150 {
		t.Fatalf("prune = %+v, %v", rep, err)
	}
	data, _ := os.ReadFile(archive)
	first := data[:bytes.IndexByte(data, '\n')+1]
	torn := first[:len(first)/2] // half a line, no newline
	f, _ := os.OpenFile(archive, os.O_APPEND|os.O_WRONLY, 0)
	f.Write(torn)
	f.Close()

	res, err := p.Restore(ctx, prune.RestoreOptions{DryRun: true})
	if err != nil || !res.TornTail || res.Restored != 150 {
		t.Fatalf("restore over a torn tail = %+v, %v; want 150 and TornTail", res, err)
	}
	if err := prune.ReadArchive(bytes.NewReader(append(append([]byte{}, first...), torn...)), func(prune.Entry) error { return nil }); err != nil {
		t.Fatalf("ReadArchive over a torn tail = %v", err)
	}
	// The same bytes followed by a newline are a damaged line, not a torn one.
	if err := prune.ReadArchive(bytes.NewReader(append(append(append([]byte{}, first...), torn...), '\n')), func(prune.Entry) error { return nil }); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Fatalf("ReadArchive of a terminated bad line = %v, want an error on line 2", err)
	}

	// A second prune appends after cutting the torn bytes.
	fill(t, st, 950, oldAuto) // r000000… again, so 950 records
	if rep, err := p.Prune(ctx); err != nil || rep.Deleted != 150 {
		t.Fatalf("second prune = %+v, %v", rep, err)
	}
	after, _ := os.ReadFile(archive)
	if !bytes.HasPrefix(after, data) || bytes.Contains(after, append(append([]byte{}, torn...), '{')) {
		t.Fatal("the torn bytes were not cut before appending")
	}
	res, err = p.Restore(ctx, prune.RestoreOptions{DryRun: true})
	if err != nil || res.TornTail || res.Entries != 300 {
		t.Fatalf("restore after the second prune = %+v, %v; want 300 entries, no torn tail", res, err)
	}
}

// When the archive cannot be written, nothing is deleted.
func TestFailingArchiveDeletesNothing(t *testing.T) {
	ctx := context.Background()
	st := &countingStore{MemoryStore: ragtest.NewMemoryStore(2)}
	fill(t, st, 950, oldAuto)
	p, _ := prune.New(prune.Config{Ceiling: 1000, ArchivePath: t.TempDir()}, st) // a directory: the append fails
	rep, err := p.Prune(ctx)
	if !errors.Is(err, talos.ErrPruneFailed) || !strings.Contains(err.Error(), "nothing was deleted") {
		t.Fatalf("prune with an unwritable archive = %v, want T109", err)
	}
	if rep.Deleted != 0 || len(st.batches) != 0 {
		t.Fatalf("deleted %d in %d delete calls with no archive", rep.Deleted, len(st.batches))
	}
	if n, _ := st.Count(ctx); n != 950 {
		t.Fatalf("%d left, want all 950", n)
	}
}

// TestRestoreBeforeAnyPrune pins that restoring before the first prune is
// not an error: there is no archive yet and nothing to restore.
func TestRestoreBeforeAnyPrune(t *testing.T) {
	st := ragtest.NewMemoryStore(2)
	p, err := prune.New(prune.Config{Ceiling: 10, ArchivePath: filepath.Join(t.TempDir(), "none.jsonl")}, st)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := p.Restore(context.Background(), prune.RestoreOptions{})
	if err != nil || !rep.NoArchive || rep.Restored != 0 {
		t.Fatalf("Restore = %+v, %v", rep, err)
	}
	// A damaged archive is a prune failure, not a configuration problem.
	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	if err := os.WriteFile(bad, []byte("{not json\n{\"also\": broken}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p, _ = prune.New(prune.Config{Ceiling: 10, ArchivePath: bad}, st)
	if _, err := p.Restore(context.Background(), prune.RestoreOptions{}); !errors.Is(err, talos.ErrPruneFailed) || errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("damaged archive reported as CONFIG_INVALID: %v", err)
	}
}

// TestLogLinesCarryTheCallersCorrelationID pins that the pruner logs with
// the caller's context, so a handler wrapped with talos.WithCorrelation
// puts the request's correlation ID on every line of the run.
func TestLogLinesCarryTheCallersCorrelationID(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(talos.WithCorrelation(slog.NewJSONHandler(&buf, nil)))
	st := ragtest.NewMemoryStore(2)
	fill(t, st, 950, oldAuto)
	p, err := prune.New(prune.Config{Ceiling: 1000, ArchivePath: filepath.Join(t.TempDir(), "a.jsonl"), Logger: log}, st)
	if err != nil {
		t.Fatal(err)
	}
	ctx := talos.WithCorrelationID(context.Background(), "0123456789abcdef")
	if _, err := p.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("the prune logged nothing")
	}
	for _, l := range lines {
		if !strings.Contains(l, `"correlation_id":"0123456789abcdef"`) {
			t.Errorf("line without the caller's correlation ID: %s", l)
		}
	}
}
