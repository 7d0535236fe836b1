package ragtest

import (
	"context"
	"sort"
	"sync"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/internal/storecheck"
)

// MemoryStore is an in-memory rag.Store for tests: exact cosine search over
// every record (embeddings stored L2-normalised, as every rag.Store keeps
// them), filters evaluated with rag.Filter.Match. It is safe for
// concurrent use. Pages of List come in id order.
type MemoryStore struct {
	dim int

	mu    sync.RWMutex
	recs  map[string]rag.Record
	order []string // sorted ids, nil when stale
	// FailDelete, when set, is called before each Delete; a non-nil error
	// fails the call (to test retries).
	FailDelete func(ids []string) error
}

// NewMemoryStore returns an empty store of dimension dim.
func NewMemoryStore(dim int) *MemoryStore {
	return &MemoryStore{dim: dim, recs: make(map[string]rag.Record)}
}

// Dimension implements rag.Store.
func (s *MemoryStore) Dimension() int { return s.dim }

func cloneRec(r rag.Record, withEmb bool) rag.Record {
	out := rag.Record{ID: r.ID, Document: r.Document, Metadata: r.Metadata.Clone()}
	if withEmb {
		out.Embedding = append([]float32(nil), r.Embedding...)
	}
	return out
}

// Upsert implements rag.Store.
func (s *MemoryStore) Upsert(ctx context.Context, recs []rag.Record) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Records("ragtest.MemoryStore.Upsert", s.dim, recs); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		c := cloneRec(r, false)
		c.Embedding = rag.Normalize(r.Embedding)
		if c.Metadata == nil {
			c.Metadata = rag.Metadata{}
		}
		c.Metadata.Normalize()
		if _, ok := s.recs[r.ID]; !ok {
			s.order = nil
		}
		s.recs[r.ID] = c
	}
	return nil
}

// Query implements rag.Store.
func (s *MemoryStore) Query(ctx context.Context, emb []float32, n int, where *rag.Filter) ([]rag.Match, error) {
	const op = "ragtest.MemoryStore.Query"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := storecheck.Embedding(op, s.dim, emb); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "n is %d; it must be at least 1", n)
	}
	if where != nil {
		if err := where.Validate(); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
		}
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]rag.Match, 0, len(s.recs))
	for _, r := range s.recs {
		if !storecheck.Match(where, r.Metadata) {
			continue
		}
		out = append(out, rag.Match{Record: cloneRec(r, true), Similarity: rag.Cosine(emb, r.Embedding)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Similarity != out[j].Similarity {
			return out[i].Similarity > out[j].Similarity
		}
		return out[i].ID < out[j].ID
	})
	if len(out) > n {
		out = out[:n]
	}
	return out, nil
}

// Get implements rag.Store.
func (s *MemoryStore) Get(ctx context.Context, ids []string) ([]rag.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []rag.Record
	seen := map[string]bool{}
	for _, id := range ids {
		if r, ok := s.recs[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, cloneRec(r, true))
		}
	}
	return out, nil
}

// UpdateMetadata implements rag.Store.
func (s *MemoryStore) UpdateMetadata(ctx context.Context, updates map[string]rag.Metadata) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for id, md := range updates {
		if err := md.Validate(); err != nil {
			return talos.Errorf(talos.CodeConfigInvalid, "ragtest.MemoryStore.UpdateMetadata", "record %q: %v", id, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, md := range updates {
		r, ok := s.recs[id]
		if !ok {
			continue
		}
		r.Metadata = r.Metadata.Clone()
		for k, v := range md.Clone().Normalize() {
			r.Metadata[k] = v
		}
		s.recs[id] = r
	}
	return nil
}

// Delete implements rag.Store.
func (s *MemoryStore) Delete(ctx context.Context, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.FailDelete != nil {
		if err := s.FailDelete(ids); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if _, ok := s.recs[id]; ok {
			delete(s.recs, id)
			s.order = nil
		}
	}
	return nil
}

// DeleteWhere implements rag.Store.
func (s *MemoryStore) DeleteWhere(ctx context.Context, where rag.Filter) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := where.Validate(); err != nil {
		return 0, talos.E(talos.CodeConfigInvalid, "ragtest.MemoryStore.DeleteWhere", err.Error(), nil)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, r := range s.recs {
		if where.Match(r.Metadata) {
			delete(s.recs, id)
			n++
		}
	}
	if n > 0 {
		s.order = nil
	}
	return n, nil
}

// Count implements rag.Store.
func (s *MemoryStore) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recs), nil
}

// List implements rag.Store.
func (s *MemoryStore) List(ctx context.Context, opts rag.ListOptions) ([]rag.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if opts.Where != nil {
		if err := opts.Where.Validate(); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, "ragtest.MemoryStore.List", err.Error(), nil)
		}
	}
	if opts.Offset < 0 || opts.Limit < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "ragtest.MemoryStore.List", "offset %d and limit %d must not be negative", opts.Offset, opts.Limit)
	}
	s.mu.Lock()
	if s.order == nil {
		s.order = make([]string, 0, len(s.recs))
		for id := range s.recs {
			s.order = append(s.order, id)
		}
		sort.Strings(s.order)
	}
	order := s.order
	s.mu.Unlock()
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []rag.Record
	skipped := 0
	docOK := storecheck.DocumentMatcher(opts)
	if opts.Where == nil && opts.Contains == "" {
		order = order[min(opts.Offset, len(order)):]
		skipped = opts.Offset
	}
	for _, id := range order {
		r, ok := s.recs[id]
		if !ok || !storecheck.Match(opts.Where, r.Metadata) {
			continue
		}
		if docOK != nil && !docOK(r.Document) {
			continue
		}
		if skipped < opts.Offset {
			skipped++
			continue
		}
		out = append(out, cloneRec(r, opts.Embeddings))
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return out, nil
}

// Close implements rag.Store.
func (s *MemoryStore) Close() error { return nil }

var _ rag.Store = (*MemoryStore)(nil)
