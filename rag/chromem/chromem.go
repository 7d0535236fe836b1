package chromem

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	cm "github.com/philippgille/chromem-go"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/atomicfile"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/internal/storecheck"
)

// Defaults.
const (
	// DefaultCollection is the collection Talos keeps its memories in, the
	// one the nightly maintenance cycle prunes.
	DefaultCollection = "talos_memory"
	// DefaultDimension is the dimension of the default embedder
	// (rag/hashembed, 384 like the spec's all-MiniLM-L6-v2 class of models).
	DefaultDimension = 384
	// sidecar holds the dimension of each collection.
	sidecar = "talos-collections.json"
)

// Config configures Open. Zero fields take the defaults.
type Config struct {
	// Path is the directory of the database; "" keeps it in memory only.
	Path string
	// Collection name (default DefaultCollection).
	Collection string
	// Dimension of the embeddings (default DefaultDimension). Opening an
	// existing collection with another dimension fails with T010.
	Dimension int
	// Compress gzips the record files.
	Compress bool
	// Logger receives warnings; nil discards.
	Logger *slog.Logger
}

// Store is the chromem-go adapter. It is safe for concurrent use.
type Store struct {
	dim  int
	db   *cm.DB
	coll *cm.Collection
	log  *slog.Logger

	mu    sync.RWMutex
	ids   map[string]struct{}
	order []string // sorted ids, nil when stale
}

var _ rag.Store = (*Store)(nil)

func noEmbed(context.Context, string) ([]float32, error) {
	return nil, errors.New("rag/chromem: texts are never embedded by the store; pass embeddings")
}

// Open opens (or creates) the collection.
func Open(cfg Config) (*Store, error) {
	const op = "chromem.Open"
	if cfg.Collection == "" {
		cfg.Collection = DefaultCollection
	}
	if cfg.Dimension == 0 {
		cfg.Dimension = DefaultDimension
	}
	if cfg.Dimension < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "dimension %d must be positive", cfg.Dimension)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var db *cm.DB
	var err error
	if cfg.Path == "" {
		db = cm.NewDB()
	} else {
		db, err = cm.NewPersistentDB(cfg.Path, cfg.Compress)
		if err != nil {
			return nil, talos.E(talos.CodeChroma, op, "cannot open the embedded vector store at "+cfg.Path+"; check the directory and its permissions", err)
		}
		if err := checkSidecar(cfg.Path, cfg.Collection, cfg.Dimension); err != nil {
			return nil, err
		}
	}
	coll, err := db.GetOrCreateCollection(cfg.Collection, map[string]string{"hnsw:space": "cosine"}, noEmbed)
	if err != nil {
		return nil, talos.E(talos.CodeChroma, op, "cannot open collection "+cfg.Collection, err)
	}
	s := &Store{dim: cfg.Dimension, db: db, coll: coll, log: log, ids: make(map[string]struct{})}
	// Enumerate the existing records once: chromem-go has no listing API.
	if n := coll.Count(); n > 0 {
		probe := make([]float32, cfg.Dimension)
		probe[0] = 1
		res, err := coll.QueryEmbedding(context.Background(), probe, n, nil, nil)
		if err != nil {
			return nil, talos.E(talos.CodeChroma, op, "cannot read the existing records of "+cfg.Collection, err)
		}
		for _, r := range res {
			if len(r.Embedding) != cfg.Dimension {
				return nil, talos.Errorf(talos.CodeConfigInvalid, op,
					"embedding dimension mismatch: collection %s holds %d-dimensional vectors, configured %d; use the embedder it was created with or a new collection",
					cfg.Collection, len(r.Embedding), cfg.Dimension)
			}
			s.ids[r.ID] = struct{}{}
		}
	}
	return s, nil
}

// checkSidecar records the dimension of a new collection, or verifies it.
func checkSidecar(dir, coll string, dim int) error {
	const op = "chromem.Open"
	dims, err := readSidecar(dir, op)
	if err != nil {
		return err
	}
	if _, ok := dims[coll]; ok {
		return checkDimension(dims, coll, dim, op)
	}
	dims[coll] = dim
	out, _ := json.MarshalIndent(dims, "", "  ")
	if err := atomicfile.WriteFile(filepath.Join(dir, sidecar), out, 0o600); err != nil {
		return talos.E(talos.CodeChroma, op, "cannot record the collection's dimension", err)
	}
	return nil
}

// readSidecar returns the embedding dimension recorded for each collection
// of the store in dir (none when the store is new).
func readSidecar(dir, op string) (map[string]int, error) {
	path := filepath.Join(dir, sidecar)
	dims := map[string]int{}
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(data, &dims); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, path+" is corrupt; it records the embedding dimension of each collection: fix or remove it", err)
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, talos.E(talos.CodeChroma, op, "cannot read "+path, err)
	}
	return dims, nil
}

// checkDimension refuses dim when coll was created with another one.
func checkDimension(dims map[string]int, coll string, dim int, op string) error {
	if have, ok := dims[coll]; ok && have != dim {
		return talos.Errorf(talos.CodeConfigInvalid, op,
			"embedding dimension mismatch: collection %s was created with dimension %d, configured %d; use the embedder it was created with, or another collection",
			coll, have, dim)
	}
	return nil
}

// Info is what Stat reports about a persistent store.
type Info struct {
	Path       string
	Collection string
	Dimension  int // recorded for the collection; 0 when it has none yet
	Records    int
}

// Stat checks the persistent store cfg describes without opening it: the
// embedding dimension recorded for the collection must be cfg.Dimension,
// and the records are counted from chromem-go's files (v0.7.0 keeps one
// file per record in a directory named after the collection). Open reads
// every record into memory; Stat reads two small directories and one file,
// so a process that only reports on the store (the daemon's health check)
// does not hold a copy of it. Stat creates and changes nothing.
func Stat(cfg Config) (Info, error) {
	const op = "chromem.Stat"
	if cfg.Collection == "" {
		cfg.Collection = DefaultCollection
	}
	if cfg.Dimension == 0 {
		cfg.Dimension = DefaultDimension
	}
	info := Info{Path: cfg.Path, Collection: cfg.Collection}
	if cfg.Path == "" {
		return info, talos.Errorf(talos.CodeConfigInvalid, op, "Config.Path is empty: Stat needs a persistent store")
	}
	if fi, err := os.Stat(cfg.Path); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return info, talos.E(talos.CodeChroma, op, "the embedded vector store at "+cfg.Path+" is unusable", err)
	}
	dims, err := readSidecar(cfg.Path, op)
	if err != nil {
		return info, err
	}
	if err := checkDimension(dims, cfg.Collection, cfg.Dimension, op); err != nil {
		return info, err
	}
	info.Dimension = dims[cfg.Collection]
	dir := filepath.Join(cfg.Path, collectionDir(cfg.Collection))
	f, err := os.Open(dir)
	if errors.Is(err, os.ErrNotExist) {
		return info, nil // no record written yet
	}
	if err != nil {
		return info, talos.E(talos.CodeChroma, op, "cannot read the collection's directory "+dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return info, talos.E(talos.CodeChroma, op, "cannot read the collection's directory "+dir, err)
	}
	for _, n := range names {
		base, _, _ := strings.Cut(n, ".")
		if base != chromemMetadataFile && (strings.HasSuffix(n, ".gob") || strings.HasSuffix(n, ".gob.gz")) {
			info.Records++
		}
	}
	return info, nil
}

// chromemMetadataFile is the name (before its extension) chromem-go gives a
// collection's own metadata file, beside one file per record.
const chromemMetadataFile = "00000000"

// collectionDir is the directory chromem-go keeps a collection in: the
// first four bytes of the SHA-256 of its name, in hex.
func collectionDir(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:4])
}

// Dimension implements rag.Store.
func (s *Store) Dimension() int { return s.dim }

// encode renders a metadata value with its type prefix.
func encode(v any) string {
	switch x := v.(type) {
	case string:
		return "s:" + x
	case int64:
		return "i:" + strconv.FormatInt(x, 10)
	case int:
		return "i:" + strconv.Itoa(x)
	case float64:
		return "f:" + strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return "b:" + strconv.FormatBool(x)
	}
	return "s:" + fmt.Sprint(v)
}

func decode(s string) any {
	if len(s) < 2 || s[1] != ':' {
		return s // written by someone else: keep as a string
	}
	body := s[2:]
	switch s[0] {
	case 's':
		return body
	case 'i':
		if v, err := strconv.ParseInt(body, 10, 64); err == nil {
			return v
		}
	case 'f':
		if v, err := strconv.ParseFloat(body, 64); err == nil {
			return v
		}
	case 'b':
		if v, err := strconv.ParseBool(body); err == nil {
			return v
		}
	}
	return s
}

func encodeMeta(md rag.Metadata) map[string]string {
	out := make(map[string]string, len(md))
	for k, v := range md {
		out[k] = encode(v)
	}
	return out
}

func decodeMeta(m map[string]string) rag.Metadata {
	out := make(rag.Metadata, len(m))
	for k, v := range m {
		out[k] = decode(v)
	}
	return out
}

// split separates the part of f chromem-go can evaluate (string and bool
// equality, joined by AND) from the residual the adapter must check.
func split(f *rag.Filter) (map[string]string, *rag.Filter) {
	if f == nil {
		return nil, nil
	}
	var conds []rag.Filter
	if f.Op == rag.OpAnd {
		conds = f.Children
	} else {
		conds = []rag.Filter{*f}
	}
	where := map[string]string{}
	var rest []rag.Filter
	for _, c := range conds {
		if c.Op == rag.OpEq {
			switch c.Value.(type) {
			case string, bool:
				if prev, dup := where[c.Key]; !dup || prev == encode(c.Value) {
					where[c.Key] = encode(c.Value)
					continue
				}
			}
		}
		rest = append(rest, c)
	}
	if len(where) == 0 {
		where = nil
	}
	switch len(rest) {
	case 0:
		return where, nil
	case 1:
		return where, &rest[0]
	}
	r := rag.And(rest...)
	return where, &r
}

func badFilter(op string, err error) error {
	return talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
}

// Upsert implements rag.Store.
func (s *Store) Upsert(ctx context.Context, recs []rag.Record) error {
	const op = "chromem.Upsert"
	if err := storecheck.Records(op, s.dim, recs); err != nil {
		return err
	}
	docs := make([]cm.Document, len(recs))
	for i, r := range recs {
		// rag.Normalize leaves a unit vector as it is, and chromem-go keeps
		// a vector within its tolerance of unit length: the stored vector
		// is exactly rag.Normalize's, as on the other adapters.
		docs[i] = cm.Document{ID: r.ID, Content: r.Document, Embedding: rag.Normalize(r.Embedding), Metadata: encodeMeta(r.Metadata.Clone().Normalize())}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range docs {
		if err := s.coll.AddDocument(ctx, docs[i]); err != nil {
			return talos.E(talos.CodeChroma, op, "cannot store record "+docs[i].ID, err)
		}
		if _, ok := s.ids[docs[i].ID]; !ok {
			s.ids[docs[i].ID] = struct{}{}
			s.order = nil
		}
	}
	return nil
}

// Query implements rag.Store.
func (s *Store) Query(ctx context.Context, emb []float32, n int, where *rag.Filter) ([]rag.Match, error) {
	const op = "chromem.Query"
	if err := storecheck.Embedding(op, s.dim, emb); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "n is %d; it must be at least 1", n)
	}
	if where != nil {
		if err := where.Validate(); err != nil {
			return nil, badFilter(op, err)
		}
	}
	if storecheck.IsZero(emb) {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "the query embedding is all zeros")
	}
	push, rest := split(where)
	s.mu.RLock()
	defer s.mu.RUnlock()
	total := s.coll.Count()
	if total == 0 {
		return nil, nil
	}
	k := n
	if rest != nil || k > total {
		k = total // the residual filter may drop any candidate: rank them all
	}
	res, err := s.coll.QueryEmbedding(ctx, emb, k, push, nil)
	if err != nil {
		return nil, talos.E(talos.CodeChroma, op, "query failed", err)
	}
	out := make([]rag.Match, 0, min(n, len(res)))
	for _, r := range res {
		md := decodeMeta(r.Metadata)
		if rest != nil && !rest.Match(md) {
			continue
		}
		out = append(out, rag.Match{
			Record:     rag.Record{ID: r.ID, Document: r.Content, Embedding: append([]float32(nil), r.Embedding...), Metadata: md},
			Similarity: float64(r.Similarity),
		})
		if len(out) == n {
			break
		}
	}
	return out, nil
}

// Get implements rag.Store.
func (s *Store) Get(ctx context.Context, ids []string) ([]rag.Record, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []rag.Record
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			continue
		}
		seen[id] = true
		if _, ok := s.ids[id]; !ok {
			continue
		}
		d, err := s.coll.GetByID(ctx, id)
		if err != nil {
			continue
		}
		out = append(out, rag.Record{ID: d.ID, Document: d.Content, Embedding: d.Embedding, Metadata: decodeMeta(d.Metadata)})
	}
	return out, nil
}

// UpdateMetadata implements rag.Store.
func (s *Store) UpdateMetadata(ctx context.Context, updates map[string]rag.Metadata) error {
	const op = "chromem.UpdateMetadata"
	for id, md := range updates {
		if err := md.Validate(); err != nil {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: %v", id, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, md := range updates {
		if _, ok := s.ids[id]; !ok {
			continue
		}
		d, err := s.coll.GetByID(ctx, id)
		if err != nil {
			continue
		}
		if d.Metadata == nil {
			d.Metadata = map[string]string{}
		}
		for k, v := range md {
			d.Metadata[k] = encode(v)
		}
		if err := s.coll.AddDocument(ctx, d); err != nil {
			return talos.E(talos.CodeChroma, op, "cannot update record "+id, err)
		}
	}
	return nil
}

// Delete implements rag.Store.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deleteLocked(ctx, ids)
}

func (s *Store) deleteLocked(ctx context.Context, ids []string) error {
	var present []string
	for _, id := range ids {
		if _, ok := s.ids[id]; ok {
			present = append(present, id)
		}
	}
	if len(present) == 0 {
		return nil
	}
	if err := s.coll.Delete(ctx, nil, nil, present...); err != nil {
		return talos.E(talos.CodeChroma, "chromem.Delete", "delete failed", err)
	}
	for _, id := range present {
		delete(s.ids, id)
	}
	s.order = nil
	return nil
}

// DeleteWhere implements rag.Store.
func (s *Store) DeleteWhere(ctx context.Context, where rag.Filter) (int, error) {
	const op = "chromem.DeleteWhere"
	if err := where.Validate(); err != nil {
		return 0, badFilter(op, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var hit []string
	for id := range s.ids {
		d, err := s.coll.GetByID(ctx, id)
		if err == nil && where.Match(decodeMeta(d.Metadata)) {
			hit = append(hit, id)
		}
	}
	if err := s.deleteLocked(ctx, hit); err != nil {
		return 0, err
	}
	return len(hit), nil
}

// Count implements rag.Store.
func (s *Store) Count(context.Context) (int, error) { return s.coll.Count(), nil }

// List implements rag.Store. Pages come in id order.
func (s *Store) List(ctx context.Context, opts rag.ListOptions) ([]rag.Record, error) {
	const op = "chromem.List"
	if opts.Where != nil {
		if err := opts.Where.Validate(); err != nil {
			return nil, badFilter(op, err)
		}
	}
	if opts.Offset < 0 || opts.Limit < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "offset %d and limit %d must not be negative", opts.Offset, opts.Limit)
	}
	s.mu.Lock()
	if s.order == nil {
		s.order = make([]string, 0, len(s.ids))
		for id := range s.ids {
			s.order = append(s.order, id)
		}
		sort.Strings(s.order)
	}
	order := s.order
	s.mu.Unlock()

	s.mu.RLock()
	defer s.mu.RUnlock()
	filtered := opts.Where != nil || opts.Contains != ""
	docOK := storecheck.DocumentMatcher(opts)
	start := 0
	if !filtered {
		start = min(opts.Offset, len(order))
	}
	skipped := 0
	var out []rag.Record
	for _, id := range order[start:] {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d, err := s.coll.GetByID(ctx, id)
		if err != nil {
			continue
		}
		if docOK != nil && !docOK(d.Content) {
			continue
		}
		md := decodeMeta(d.Metadata)
		if !storecheck.Match(opts.Where, md) {
			continue
		}
		if filtered && skipped < opts.Offset {
			skipped++
			continue
		}
		r := rag.Record{ID: d.ID, Document: d.Content, Metadata: md}
		if opts.Embeddings {
			r.Embedding = d.Embedding
		}
		out = append(out, r)
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return out, nil
}

// Close implements rag.Store. chromem-go writes synchronously, so there is
// nothing to flush.
func (s *Store) Close() error { return nil }
