package rag

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
)

// DefaultCapacity is the vector ceiling (CHROMADB_MAX_VECTORS).
const DefaultCapacity = 100_000

// Strategy says how a context was obtained.
type Strategy string

// Strategies, in the order of the capacity fallback chain.
const (
	StrategyVector          Strategy = "VECTOR_SEARCH"
	StrategyAggressivePrune Strategy = "AGGRESSIVE_PRUNE"
	StrategyHistory         Strategy = "REDIS_CACHE"
	StrategyKeyword         Strategy = "KEYWORD_ONLY"
	StrategyEmpty           Strategy = "EMPTY_CONTEXT"
)

// Notes of the fallback strategies.
const (
	NoteAggressivePrune = "Context retrieved after aggressive pruning"
	NoteHistory         = "Context from short-term cache only"
	NoteKeyword         = "Keyword-only search (semantic search unavailable)"
	NoteEmpty           = "No context available - operating without RAG"
)

// CapacityPruner frees room in a full store. prune.Pruner implements it;
// declared here so rag does not import prune.
type CapacityPruner interface {
	// PruneAggressive prunes with the emergency parameters and returns how
	// many records were deleted.
	PruneAggressive(ctx context.Context) (int, error)
}

// RetrieverConfig configures NewRetriever. Zero fields take the defaults.
type RetrieverConfig struct {
	TopK   int     // default DefaultTopK, clamped to [1, MaxTopK]
	Lambda float64 // MMR trade-off, default DefaultLambda; must be in (0,1]
	// Threshold is the minimum similarity after MMR; 0 takes the
	// embedder's (ThresholdFor: its SimilarityThreshold, else
	// DefaultThreshold); negative disables it.
	Threshold float64
	// KeywordThreshold is the keyword score (from a store that is a
	// KeywordSearcher) at or above which a memory passes whatever its
	// similarity; default DefaultKeywordThreshold, negative disables it.
	KeywordThreshold float64
	// HalfLife of the relevance recency (default DefaultRecencyHalfLife).
	HalfLife time.Duration
	// Budget in tokens for the assembled memories (default DefaultBudget).
	Budget int
	// Capacity is the store's ceiling (default DefaultCapacity): a count at
	// or above it starts the fallback chain.
	Capacity int
	// Weights of the relevance score (default 0.40/0.25/0.20/0.15).
	Weights RelevanceWeights
	// HistoryMessages used by the history fallback (default DefaultHistoryLimit).
	HistoryMessages int
	// Logger; nil discards.
	Logger *slog.Logger
}

// Retriever retrieves memories for a query: over-fetch, MMR, relevance,
// threshold, budget, access statistics, and the capacity fallback chain.
type Retriever struct {
	cfg     RetrieverConfig
	store   Store
	emb     Embedder
	history History        // optional
	pruner  CapacityPruner // optional
	log     *slog.Logger
}

// NewRetriever builds a retriever. history and pruner may be nil (their
// fallback steps are then skipped).
func NewRetriever(cfg RetrieverConfig, store Store, emb Embedder, history History, pruner CapacityPruner) (*Retriever, error) {
	const op = "rag.NewRetriever"
	if store == nil || emb == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "a store and an embedder are required")
	}
	cfg.TopK = clampTopK(cfg.TopK)
	if cfg.Lambda == 0 {
		cfg.Lambda = DefaultLambda
	}
	if cfg.Lambda < 0 || cfg.Lambda > 1 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "MMR lambda %v must be in (0, 1]", cfg.Lambda)
	}
	if cfg.Threshold == 0 {
		cfg.Threshold = ThresholdFor(emb)
	}
	if cfg.Threshold > 1 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "similarity threshold %v must be at most 1", cfg.Threshold)
	}
	if cfg.KeywordThreshold == 0 {
		cfg.KeywordThreshold = DefaultKeywordThreshold
	}
	if cfg.KeywordThreshold > 1 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "keyword threshold %v must be at most 1", cfg.KeywordThreshold)
	}
	if cfg.HalfLife == 0 {
		cfg.HalfLife = DefaultRecencyHalfLife
	}
	if cfg.Budget == 0 {
		cfg.Budget = DefaultBudget
	}
	if cfg.Capacity == 0 {
		cfg.Capacity = DefaultCapacity
	}
	if cfg.Weights == (RelevanceWeights{}) {
		cfg.Weights = DefaultRelevanceWeights()
	}
	if cfg.HistoryMessages == 0 {
		cfg.HistoryMessages = DefaultHistoryLimit
	}
	if cfg.Budget < 0 || cfg.Capacity < 0 || cfg.HalfLife < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "budget %d, capacity %d and half-life %s must not be negative", cfg.Budget, cfg.Capacity, cfg.HalfLife)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Retriever{cfg: cfg, store: store, emb: emb, history: history, pruner: pruner, log: log}, nil
}

// Query is one retrieval request.
type Query struct {
	Text      string
	SessionID string  // for the history fallback
	TopK      int     // 0 = the configured TopK
	Type      string  // query type for the metadata score's type_match
	Where     *Filter // optional metadata filter
	Budget    int     // 0 = the configured budget
}

// Result is the assembled context of one query.
type Result struct {
	Assembly
	Strategy   Strategy
	Note       string // the fallback note, "" for a plain vector search
	Warning    bool   // true when operating without RAG
	TotalFound int    // candidates the store returned
	Returned   int    // after MMR and the threshold, before the budget
}

// Render formats the included items for a prompt (see Render).
func (r *Result) Render() string { return Render(r.Items) }

func errCapacity(err error) bool { return errors.Is(err, talos.ErrVectorStoreFull) }

// Retrieve runs a query. It fails only on bad input or a cancelled context:
// when the store is full or failing it walks the fallback chain (aggressive
// prune → history → keyword search → empty with a warning).
func (r *Retriever) Retrieve(ctx context.Context, q Query) (*Result, error) {
	const op = "rag.Retrieve"
	if strings.TrimSpace(q.Text) == "" {
		return nil, talos.Errorf(talos.CodeInputInvalid, op, "the query text is empty; give the words to search for")
	}
	if q.Where != nil {
		if err := q.Where.Validate(); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
		}
	}
	topK := r.cfg.TopK
	if q.TopK != 0 {
		topK = clampTopK(q.TopK)
	}
	budget := r.cfg.Budget
	if q.Budget > 0 {
		budget = q.Budget
	}
	vecs, err := r.emb.Embed(ctx, []string{q.Text})
	if err != nil || len(vecs) != 1 {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		r.log.Warn("rag: embedding the query failed; falling back", "embedder", r.emb.Name(), "err", err)
		return r.fallback(ctx, q, topK, budget, false)
	}
	atCapacity := false
	if n, err := r.store.Count(ctx); err == nil && n >= r.cfg.Capacity {
		atCapacity = true
	}
	if !atCapacity {
		res, err := r.vectorSearch(ctx, q, vecs[0], topK, budget)
		if err == nil {
			return res, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		atCapacity = errCapacity(err)
		r.log.Warn("rag: vector search failed; falling back", "err", err)
	}
	if atCapacity {
		r.log.Warn("CHROMADB_AT_CAPACITY: the vector store is at its ceiling; trying the fallback chain", "capacity", r.cfg.Capacity)
		if r.pruner != nil {
			deleted, err := r.pruner.PruneAggressive(ctx)
			if err != nil {
				r.log.Warn("rag: aggressive prune failed", "err", err)
			} else if deleted > 0 {
				if res, err := r.vectorSearch(ctx, q, vecs[0], topK, budget); err == nil {
					res.Strategy, res.Note = StrategyAggressivePrune, NoteAggressivePrune
					return res, nil
				}
			}
		}
	}
	return r.fallback(ctx, q, topK, budget, true)
}

// Threshold is the similarity threshold in use (the configured one, or the
// embedder's).
func (r *Retriever) Threshold() float64 { return r.cfg.Threshold }

// vectorSearch is the normal path: the store's nearest records, merged with
// the records sharing words with the query when the store is a
// KeywordSearcher, then MMR, the thresholds, relevance and the budget.
func (r *Retriever) vectorSearch(ctx context.Context, q Query, qv []float32, topK, budget int) (*Result, error) {
	cands, err := r.store.Query(ctx, qv, overFetch(topK), q.Where)
	if err != nil {
		return nil, err
	}
	// pick holds what MMR ranks by: the cosine similarity, raised to the
	// keyword score for a memory holding the query's words, so a memory
	// the embedder misses still competes.
	kw := map[string]float64{}
	if ks, ok := r.store.(KeywordSearcher); ok {
		hits, err := ks.KeywordSearch(ctx, q.Text, overFetch(topK), q.Where)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			r.log.Warn("rag: keyword search failed; using the vector candidates only", "err", err)
		}
		have := make(map[string]bool, len(cands))
		for _, c := range cands {
			have[c.ID] = true
		}
		for _, h := range hits {
			kw[h.ID] = h.Similarity
			if !have[h.ID] {
				have[h.ID] = true
				cands = append(cands, Match{Record: h.Record, Similarity: Cosine(qv, h.Embedding)})
			}
		}
	}
	res := &Result{Strategy: StrategyVector, TotalFound: len(cands)}
	if len(cands) == 0 {
		return res, nil
	}
	pick := cands
	if len(kw) > 0 {
		pick = make([]Match, len(cands))
		for i, c := range cands {
			pick[i] = c
			pick[i].Similarity = max(c.Similarity, kw[c.ID])
		}
	}
	now := time.Now()
	qTokens := wordSet(q.Text)
	var items []Item
	for _, i := range MMR(pick, topK, r.cfg.Lambda) {
		c := cands[i]
		byVector := r.cfg.Threshold < 0 || c.Similarity >= r.cfg.Threshold
		byWords := r.cfg.KeywordThreshold >= 0 && kw[c.ID] >= r.cfg.KeywordThreshold
		if !byVector && !byWords {
			continue // the threshold applies after MMR
		}
		items = append(items, r.item(c.Record, c.Similarity, qTokens, q.Type, now))
	}
	res.Returned = len(items)
	res.Assembly = Assemble(items, budget)
	r.touch(ctx, res.Items, accessCounts(cands, func(m Match) Record { return m.Record }), now)
	return res, nil
}

// Score computes the relevance of a record for a query.
func (r *Retriever) Score(rec Record, similarity float64, query, queryType string, now time.Time) Relevance {
	return r.relevance(rec, similarity, wordSet(query), queryType, now)
}

func (r *Retriever) relevance(rec Record, sim float64, qTokens map[string]struct{}, queryType string, now time.Time) Relevance {
	rel := Relevance{
		Similarity: clamp01(sim),
		Keyword:    jaccard(qTokens, wordSet(rec.Document)),
		Metadata:   metadataScore(rec.Metadata, queryType),
		Recency:    recencyScore(rec.Metadata.Memory().CreatedAt, now, r.cfg.HalfLife),
	}
	rel.Score = r.cfg.Weights.Combine(rel.Similarity, rel.Keyword, rel.Metadata, rel.Recency)
	return rel
}

func (r *Retriever) item(rec Record, sim float64, qTokens map[string]struct{}, queryType string, now time.Time) Item {
	m := rec.Metadata.Memory()
	return Item{
		ID: rec.ID, Text: rec.Document, Trusted: m.Trusted, Source: m.Source, CreatedAt: m.CreatedAt,
		Similarity: sim, Relevance: r.relevance(rec, sim, qTokens, queryType, now), FromStore: true,
	}
}

// touch records the use of the included memories: access_count + 1 and
// last_accessed_at = now, from the counts read with the candidates (no
// extra read). A failure is logged, not returned: retrieval already
// succeeded. (Two concurrent retrievals of one memory may count it once;
// the statistic is advisory.)
func (r *Retriever) touch(ctx context.Context, items []Item, counts map[string]int64, now time.Time) {
	updates := make(map[string]Metadata, len(items))
	for _, it := range items {
		if it.FromStore {
			updates[it.ID] = Metadata{KeyAccessCount: counts[it.ID] + 1, KeyLastAccessedAt: now.UnixMilli()}
		}
	}
	if len(updates) == 0 {
		return
	}
	if err := r.store.UpdateMetadata(ctx, updates); err != nil {
		r.log.Warn("rag: updating access statistics failed", "err", err)
	}
}

func accessCounts[T any](recs []T, get func(T) Record) map[string]int64 {
	out := make(map[string]int64, len(recs))
	for _, x := range recs {
		rec := get(x)
		out[rec.ID], _ = rec.Metadata.Int(KeyAccessCount)
	}
	return out
}

// fallback walks history → keyword → empty.
func (r *Retriever) fallback(ctx context.Context, q Query, topK, budget int, capacity bool) (*Result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := time.Now()
	if r.history != nil && q.SessionID != "" {
		msgs, err := r.history.Recent(ctx, q.SessionID, r.cfg.HistoryMessages)
		if err != nil {
			r.log.Warn("rag: history fallback unavailable", "err", err)
		} else if len(msgs) > 0 {
			items := make([]Item, 0, len(msgs))
			qTokens := wordSet(q.Text)
			for i, m := range msgs {
				kw := jaccard(qTokens, wordSet(m.Content))
				// Later messages rank higher; keyword overlap breaks ties.
				score := clamp01(0.5*float64(i+1)/float64(len(msgs)) + 0.5*kw)
				items = append(items, Item{
					ID: fmt.Sprintf("history-%d", i), Text: m.Role + ": " + m.Content, CreatedAt: m.At,
					Source: roleSource(m.Role), Relevance: Relevance{Keyword: kw, Score: score},
				})
			}
			return &Result{Assembly: Assemble(items, budget), Strategy: StrategyHistory, Note: NoteHistory, Returned: len(items)}, nil
		}
	}
	if res, err := r.keywordSearch(ctx, q, topK, budget, now); err == nil && res.Included > 0 {
		return res, nil
	} else if err != nil {
		r.log.Warn("rag: keyword fallback failed", "err", err)
	}
	r.log.Warn("rag: " + NoteEmpty)
	return &Result{Strategy: StrategyEmpty, Note: NoteEmpty, Warning: true}, nil
}

// roleSource maps a message role to the source of the history item.
func roleSource(role string) Source {
	switch strings.ToLower(role) {
	case "user":
		return SourceUser
	case "tool":
		return SourceTool
	}
	return SourceModel
}

// keywordSearch finds memories sharing words with the query — through the
// store's KeywordSearch when it is a KeywordSearcher, else as those
// containing the query's longest words, ignoring case
// (ListOptions.ContainsFold: the words are lower-cased tokens, the
// documents are not) — and ranks them by keyword overlap.
func (r *Retriever) keywordSearch(ctx context.Context, q Query, topK, budget int, now time.Time) (*Result, error) {
	qTokens := wordSet(q.Text)
	words := make([]string, 0, len(qTokens))
	for w := range qTokens {
		if len([]rune(w)) >= 3 {
			words = append(words, w)
		}
	}
	sort.Slice(words, func(i, j int) bool {
		if len(words[i]) != len(words[j]) {
			return len(words[i]) > len(words[j])
		}
		return words[i] < words[j]
	})
	if len(words) > 3 {
		words = words[:3]
	}
	found := map[string]Record{}
	if ks, ok := r.store.(KeywordSearcher); ok {
		// The store's word index: no scan of every document.
		hits, err := ks.KeywordSearch(ctx, q.Text, MaxTopK, q.Where)
		if err != nil {
			return nil, err
		}
		for _, h := range hits {
			found[h.ID] = h.Record
		}
		words = nil
	}
	for _, w := range words {
		recs, err := r.store.List(ctx, ListOptions{Where: q.Where, Contains: w, ContainsFold: true, Limit: MaxTopK})
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			found[rec.ID] = rec
		}
	}
	var items []Item
	for _, rec := range found {
		it := r.item(rec, 0, qTokens, q.Type, now)
		if it.Relevance.Keyword > 0 {
			items = append(items, it)
		}
	}
	sort.Slice(items, func(i, j int) bool {
		if items[i].Relevance.Keyword != items[j].Relevance.Keyword {
			return items[i].Relevance.Keyword > items[j].Relevance.Keyword
		}
		return items[i].ID < items[j].ID
	})
	if len(items) > topK {
		items = items[:topK]
	}
	res := &Result{Strategy: StrategyKeyword, Note: NoteKeyword, TotalFound: len(found), Returned: len(items)}
	res.Assembly = Assemble(items, budget)
	counts := make(map[string]int64, len(found))
	for id, rec := range found {
		counts[id], _ = rec.Metadata.Int(KeyAccessCount)
	}
	r.touch(ctx, res.Items, counts, now)
	return res, nil
}

// NewID returns a random 16-hex-character memory id.
func NewID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Remember embeds text and stores it as a memory with m's metadata
// (created_at defaults to now, priority to auto, type to general). id ""
// generates one. Bad input (CheckNewMemory: an empty or oversized text, a
// trusted memory from web, tool or skill, a time in the future) is refused
// with T015 INPUT_INVALID naming every problem. On a full store it first
// asks the pruner for room and fails with T108 when there is none.
func (r *Retriever) Remember(ctx context.Context, id, text string, m Memory) (string, error) {
	const op = "rag.Remember"
	if err := CheckNewMemory(text, m, time.Now()); err != nil {
		return "", talos.E(talos.CodeInputInvalid, op, "the memory was not stored", err)
	}
	if id == "" {
		id = NewID()
	}
	if m.CreatedAt.IsZero() {
		m.CreatedAt = time.Now()
	}
	if m.Priority == "" {
		m.Priority = PriorityAuto
	}
	if m.Type == "" {
		m.Type = DefaultType
	}
	n, err := r.store.Count(ctx)
	if err != nil {
		return "", err
	}
	if n >= r.cfg.Capacity {
		existing, _ := r.store.Get(ctx, []string{id})
		if len(existing) == 0 {
			freed := 0
			if r.pruner != nil {
				freed, err = r.pruner.PruneAggressive(ctx)
				if err != nil {
					r.log.Warn("rag: aggressive prune before a write failed", "err", err)
				}
			}
			if n-freed >= r.cfg.Capacity {
				return "", talos.Errorf(talos.CodeVectorStoreFull, op,
					"the vector store holds %d memories, at its ceiling of %d, and pruning freed %d; raise the ceiling or delete memories (talos memory prune)", n, r.cfg.Capacity, freed)
			}
		}
	}
	vecs, err := r.emb.Embed(ctx, []string{text})
	if err != nil {
		return "", err
	}
	if len(vecs) != 1 {
		return "", talos.Errorf(talos.CodeModelBadResponse, op, "the embedder returned %d vectors for 1 text", len(vecs))
	}
	rec := Record{ID: id, Document: text, Embedding: vecs[0], Metadata: m.Metadata()}
	if err := r.store.Upsert(ctx, []Record{rec}); err != nil {
		return "", err
	}
	r.checkCeiling(ctx)
	return id, nil
}

// Ceiling alert levels after a write.
const (
	CeilingWarning   = 0.90
	CeilingError     = 0.95
	CeilingEmergency = 0.99
)

// checkCeiling logs the fill level after a write: WARNING at 90%, ERROR at
// 95%, and at 99% a CRITICAL log and an emergency (aggressive) prune.
func (r *Retriever) checkCeiling(ctx context.Context) {
	n, err := r.store.Count(ctx)
	if err != nil || r.cfg.Capacity <= 0 {
		return
	}
	ratio := float64(n) / float64(r.cfg.Capacity)
	msg := fmt.Sprintf("Vector store at %.1f%% capacity (%d/%d)", 100*ratio, n, r.cfg.Capacity)
	switch {
	case ratio >= CeilingEmergency:
		r.log.Error("CRITICAL: " + msg)
		if r.pruner != nil {
			if _, err := r.pruner.PruneAggressive(ctx); err != nil {
				r.log.Error("rag: emergency prune failed", "err", err)
			}
		}
	case ratio >= CeilingError:
		r.log.Error("ERROR: " + msg)
	case ratio >= CeilingWarning:
		r.log.Warn("WARNING: " + msg)
	}
}
