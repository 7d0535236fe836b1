package rag_test

// Heavy benchmarks of docs/benchmarks.md (rag section). They run only with
// TALOS_RAG_BENCH=1 (and TALOS_TEST_CHROMA_URL for the Chroma part):
//
//	eval "$(scripts/services.sh env)"
//	TALOS_RAG_BENCH=1 go test -run '^$' -bench RAGHeavy -benchtime 1x -timeout 60m ./rag/
//
// TALOS_RAG_BENCH_SIZES (default "10000,100000") and
// TALOS_RAG_BENCH_CHROMA_BUDGET (insertion time allowed on Chroma, default
// 15m) bound the run.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chroma"
	"github.com/talos-ironclad/talos/rag/chromem"
	"github.com/talos-ironclad/talos/rag/hashembed"
	"github.com/talos-ironclad/talos/rag/ragtest"
	"github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
)

const benchDim = 384

// corpus makes deterministic pseudo-sentences over a Zipf-distributed
// vocabulary of 5,000 words, so hashembed vectors have realistic overlap.
type corpus struct {
	rng  *rand.Rand
	zipf *rand.Zipf
}

func newCorpus(seed uint64) *corpus {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	return &corpus{rng: r, zipf: rand.NewZipf(r, 1.1, 2, 4999)}
}

func (c *corpus) sentence() string {
	n := 8 + c.rng.IntN(14)
	w := make([]string, n)
	for i := range w {
		w[i] = "w" + strconv.FormatUint(c.zipf.Uint64(), 36)
	}
	return strings.Join(w, " ")
}

func (c *corpus) records(emb *hashembed.Embedder, from, n int) []rag.Record {
	now := time.Now()
	prios := []rag.Priority{rag.PriorityAuto, rag.PriorityAuto, rag.PriorityAuto, rag.PriorityNormal, rag.PriorityHigh, rag.PriorityTemporary, rag.PriorityPermanent}
	out := make([]rag.Record, n)
	for i := range out {
		text := c.sentence()
		created := now.Add(-time.Duration(c.rng.IntN(400*24)) * time.Hour)
		m := rag.Memory{CreatedAt: created, LastAccessedAt: created.Add(time.Duration(c.rng.IntN(100)) * time.Hour),
			AccessCount: int64(c.rng.IntN(50)), Priority: prios[c.rng.IntN(len(prios))], Source: rag.SourceUser, Trusted: c.rng.IntN(2) == 0}
		out[i] = rag.Record{ID: fmt.Sprintf("m%07d", from+i), Document: text, Embedding: emb.Vector(text), Metadata: m.Metadata()}
	}
	return out
}

func pct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := int(p * float64(len(s)-1))
	return s[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

// latency measures raw store queries (over-fetch 30) and full retrievals
// (top 10: embed, query, MMR, relevance, budget, access-stat update).
func latency(t testing.TB, st rag.Store, emb *hashembed.Embedder, label string, n int) {
	ctx := context.Background()
	c := newCorpus(999)
	r, err := rag.NewRetriever(rag.RetrieverConfig{Threshold: -1, Capacity: 10_000_000}, st, emb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	const queries = 200
	var raw, full []time.Duration
	for i := 0; i < queries; i++ {
		q := c.sentence()
		v := emb.Vector(q)
		start := time.Now()
		if _, err := st.Query(ctx, v, 30, nil); err != nil {
			t.Fatal(err)
		}
		raw = append(raw, time.Since(start))
		start = time.Now()
		res, err := r.Retrieve(ctx, rag.Query{Text: q})
		if err != nil {
			t.Fatal(err)
		}
		if res.Strategy != rag.StrategyVector {
			t.Fatalf("strategy %s", res.Strategy)
		}
		full = append(full, time.Since(start))
	}
	t.Logf("| %s | %d | query(30) p50 %s, p99 %s | Retrieve(top 10) p50 %s, p99 %s |", label, n,
		ms(pct(raw, 0.5)), ms(pct(raw, 0.99)), ms(pct(full, 0.5)), ms(pct(full, 0.99)))
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

func sizes() []int {
	s := os.Getenv("TALOS_RAG_BENCH_SIZES")
	if s == "" {
		return []int{10_000, 100_000}
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, _ := strconv.Atoi(strings.TrimSpace(f))
		out = append(out, n)
	}
	return out
}

// BenchmarkRAGHeavy measures once per sub-benchmark (run it with
// -benchtime 1x) and logs the table rows of docs/benchmarks.md. It is a
// benchmark, not a test, so the normal test suite never pays for it; the
// environment gate keeps `make bench` from spending ten minutes on it.
func BenchmarkRAGHeavy(b *testing.B) {
	if os.Getenv("TALOS_RAG_BENCH") != "1" {
		b.Skip("set TALOS_RAG_BENCH=1 to run the heavy RAG benchmarks (docs/benchmarks.md, rag section)")
	}
	emb, _ := hashembed.New(hashembed.Config{Dimension: benchDim})
	b.Run("Scoring", func(b *testing.B) { benchScoring(b, emb) })
	b.Run("SQLStore", func(b *testing.B) { benchSQLStore(b, emb) })
	b.Run("SQLStoreDense", func(b *testing.B) { benchSQLStoreDense(b) })
	b.Run("Chromem", func(b *testing.B) { benchChromem(b, emb) })
	b.Run("Chroma", func(b *testing.B) { benchChroma(b, emb) })
}

func benchScoring(t testing.TB, emb *hashembed.Embedder) {
	ctx := context.Background()
	st := ragtest.NewMemoryStore(benchDim)
	c := newCorpus(1)
	for i := 0; i < 100_000; i += 5000 {
		if err := st.Upsert(ctx, c.records(emb, i, 5000)); err != nil {
			t.Fatal(err)
		}
	}
	all, _ := st.List(ctx, rag.ListOptions{})
	now := time.Now()
	start := time.Now()
	var sum float64
	for _, r := range all {
		sum += prune.Score(r.Metadata, now)
		prune.Protected(r.Metadata, now)
	}
	pure := time.Since(start)
	p, _ := prune.New(prune.Config{}, st)
	start = time.Now()
	plan, err := p.Plan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("| score + guarantee check of 100,000 metadata maps | %s |", ms(pure))
	t.Logf("| prune.Plan over 100,000 records (in-memory store: list pages, score, sort, pick %d) | %s |", len(plan.Candidates), ms(time.Since(start)))
	_ = sum
}

func benchChromem(t testing.TB, emb *hashembed.Embedder) {
	ctx := context.Background()
	dir := t.TempDir()
	before := heapInUse()
	st, err := chromem.Open(chromem.Config{Path: dir, Dimension: benchDim})
	if err != nil {
		t.Fatal(err)
	}
	c := newCorpus(7)
	have := 0
	for _, n := range sizes() {
		start := time.Now()
		for have < n {
			k := min(1000, n-have)
			if err := st.Upsert(ctx, c.records(emb, have, k)); err != nil {
				t.Fatal(err)
			}
			have += k
		}
		t.Logf("chromem: inserted up to %d in %s", n, time.Since(start).Round(time.Millisecond))
		latency(t, st, emb, "chromem (persistent, exhaustive search)", n)
		if n == 100_000 {
			t.Logf("| chromem Go heap in use for 100,000 records (384 dims, docs, metadata) | %.0f MB |", float64(heapInUse()-before)/1e6)
			p, _ := prune.New(prune.Config{}, st)
			start := time.Now()
			plan, err := p.Plan(ctx)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("| prune.Plan over 100,000 records on chromem (pick %d) | %s |", len(plan.Candidates), ms(time.Since(start)))
		}
	}
}

// benchSQLStore measures the embedded default: records in SQLite, exact
// search over an in-memory index.
func benchSQLStore(t testing.TB, emb *hashembed.Embedder) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := heapInUse()
	st, err := sqlstore.Open(ctx, db, sqlstore.Config{Dimension: benchDim})
	if err != nil {
		t.Fatal(err)
	}
	c := newCorpus(7)
	have := 0
	for _, n := range sizes() {
		start := time.Now()
		for have < n {
			k := min(1000, n-have)
			if err := st.Upsert(ctx, c.records(emb, have, k)); err != nil {
				t.Fatal(err)
			}
			have += k
		}
		t.Logf("sqlstore: inserted up to %d in %s", n, time.Since(start).Round(time.Millisecond))
		latency(t, st, emb, "sqlstore (SQLite, exact in-memory search)", n)
		if n == 100_000 {
			t.Logf("| sqlstore Go heap in use for 100,000 records (384 dims, docs, metadata, keyword index) | %.0f MB |", float64(heapInUse()-before)/1e6)
			start := time.Now()
			again, err := sqlstore.Open(ctx, db, sqlstore.Config{Dimension: benchDim})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("| sqlstore Open (load 100,000 records from SQLite) | %s |", ms(time.Since(start)))
			again.Close()
		}
	}
}

// benchSQLStoreDense measures the raw query of rag/sqlstore with dense
// vectors, as a semantic embedder (Ollama, Gemini) makes them: every one of
// the 384 components is non-zero, so the column-wise scan touches all of
// them, where a hashembed query touches about a tenth.
func benchSQLStoreDense(t testing.TB) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	st, err := sqlstore.Open(ctx, db, sqlstore.Config{Dimension: benchDim})
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	vec := func() []float32 {
		v := make([]float32, benchDim)
		for i := range v {
			v[i] = float32(r.NormFloat64())
		}
		return v
	}
	have := 0
	for _, n := range sizes() {
		for have < n {
			recs := make([]rag.Record, min(1000, n-have))
			for i := range recs {
				recs[i] = rag.Record{ID: fmt.Sprint("d", have+i), Document: "dense", Embedding: vec()}
			}
			if err := st.Upsert(ctx, recs); err != nil {
				t.Fatal(err)
			}
			have += len(recs)
		}
		var raw []time.Duration
		for i := 0; i < 200; i++ {
			q := vec()
			start := time.Now()
			if _, err := st.Query(ctx, q, 30, nil); err != nil {
				t.Fatal(err)
			}
			raw = append(raw, time.Since(start))
		}
		t.Logf("| sqlstore, dense vectors (a semantic embedder's) | %d | query(30) p50 %s, p99 %s |", n, ms(pct(raw, 0.5)), ms(pct(raw, 0.99)))
	}
}

// chromaRSS returns the resident memory of the Chroma server process (the
// one started by scripts/services.sh), or 0 when it cannot be found.
func chromaRSS(port string) uint64 {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(string(cmd), "chroma") || !strings.Contains(string(cmd), port) {
			continue
		}
		status, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(line, "VmRSS:") {
				f := strings.Fields(line)
				kb, _ := strconv.ParseUint(f[1], 10, 64)
				return kb * 1024
			}
		}
	}
	return 0
}

func benchChroma(t testing.TB, emb *hashembed.Embedder) {
	url := os.Getenv("TALOS_TEST_CHROMA_URL")
	if url == "" {
		t.Skip("TALOS_TEST_CHROMA_URL unset")
	}
	budget := 15 * time.Minute
	if s := os.Getenv("TALOS_RAG_BENCH_CHROMA_BUDGET"); s != "" {
		budget, _ = time.ParseDuration(s)
	}
	port := url[strings.LastIndex(url, ":")+1:]
	ctx := context.Background()
	name := fmt.Sprintf("talos_bench_%d", time.Now().Unix())
	rssBefore := chromaRSS(port)
	st, err := chroma.Open(ctx, chroma.Config{URL: url, Collection: name, Dimension: benchDim, Timeout: 5 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close(); _ = chroma.DeleteCollection(context.Background(), url, name) }()
	c := newCorpus(7)
	have := 0
	deadline := time.Now().Add(budget)
	insertStart := time.Now()
	for _, n := range sizes() {
		start := time.Now()
		for have < n && time.Now().Before(deadline) {
			k := min(1000, n-have)
			if err := st.Upsert(ctx, c.records(emb, have, k)); err != nil {
				t.Fatal(err)
			}
			have += k
		}
		t.Logf("chroma: inserted up to %d in %s (%.0f records/s overall)", have, time.Since(start).Round(time.Millisecond), float64(have)/time.Since(insertStart).Seconds())
		latency(t, st, emb, "Chroma server (HNSW, HTTP)", have)
		if have < n {
			t.Logf("chroma: insertion budget %s exhausted at %d of %d records", budget, have, n)
			break
		}
	}
	if rss := chromaRSS(port); rss > 0 && rssBefore > 0 {
		t.Logf("| Chroma server RSS growth for %d records | %.0f MB (%.0f → %.0f MB) |", have, float64(rss-rssBefore)/1e6, float64(rssBefore)/1e6, float64(rss)/1e6)
	}
	// A 10,000-record prune end to end: list and score every record,
	// archive (fsynced) and delete 10,000 in batches of 500 with verify.
	count, _ := st.Count(ctx)
	target := count - min(10_000, count/2)
	ratio := float64(target) / float64(count)
	p, err := prune.New(prune.Config{Ceiling: count, ArchivePath: filepath.Join(t.TempDir(), "archive.jsonl"),
		TriggerRatio: ratio, TargetRatio: ratio}, st)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := p.Run(ctx, prune.Params{TriggerRatio: ratio, TargetRatio: ratio, Reason: "bench"}, false)
	if err != nil {
		t.Fatal(err)
	}
	var size int64
	if fi, err := os.Stat(rep.Archive); err == nil {
		size = fi.Size()
	}
	t.Logf("| prune of %d records on Chroma holding %d (list + score + sort %s; archive %.0f MB) | %s |",
		rep.Deleted, count, ms(rep.Plan.ScoredIn), float64(size)/1e6, time.Since(start).Round(time.Millisecond))
}
