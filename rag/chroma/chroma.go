package chroma

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	v2 "github.com/amikos-tech/chroma-go/pkg/api/v2"
	"github.com/amikos-tech/chroma-go/pkg/embeddings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/internal/storecheck"
)

// Defaults.
const (
	// DefaultCollection is the collection the nightly maintenance cycle
	// works on.
	DefaultCollection = "talos_memory"
	// DefaultDimension matches rag/hashembed's default.
	DefaultDimension = 384
	// DefaultTimeout bounds each HTTP call.
	DefaultTimeout = 30 * time.Second
	// UpsertBatch is the number of records per upsert call.
	UpsertBatch = 1000
	// DeleteBatch is the number of ids per delete call (Chroma accepts at
	// most 5,461).
	DeleteBatch = 500
	// pageSize is the page used when a List asks for every record.
	pageSize = 1000
	// dimKey is the collection metadata key holding the dimension.
	dimKey = "talos_dim"
)

// Config configures Open.
type Config struct {
	// URL of the server, e.g. http://127.0.0.1:8000. Required.
	URL string
	// Collection name (default DefaultCollection).
	Collection string
	// Dimension of the embeddings (default DefaultDimension).
	Dimension int
	// Timeout of each HTTP call (default DefaultTimeout).
	Timeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// Store is the Chroma adapter. It is safe for concurrent use.
type Store struct {
	dim     int
	apiBase string // .../api/v2
	http    *http.Client
	client  v2.Client
	coll    v2.Collection
	log     *slog.Logger
}

var _ rag.Store = (*Store)(nil)

// Open connects to the server and gets or creates the collection. A
// collection created with another dimension is a T010 error.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	const op = "chroma.Open"
	if cfg.URL == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "the Chroma URL is empty; set it (for example http://127.0.0.1:8000)")
	}
	if cfg.Collection == "" {
		cfg.Collection = DefaultCollection
	}
	if cfg.Dimension == 0 {
		cfg.Dimension = DefaultDimension
	}
	if cfg.Dimension < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "dimension %d must be positive", cfg.Dimension)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	client, err := v2.NewHTTPClient(v2.WithBaseURL(cfg.URL), v2.WithTimeout(cfg.Timeout))
	if err != nil {
		return nil, talos.E(talos.CodeChroma, op, "cannot create a Chroma client for "+cfg.URL, err)
	}
	if err := client.Heartbeat(ctx); err != nil {
		_ = client.Close()
		return nil, talos.E(talos.CodeChroma, op, "Chroma at "+cfg.URL+" does not answer its heartbeat; start it or fix the URL", err)
	}
	coll, err := client.GetOrCreateCollection(ctx, cfg.Collection,
		v2.WithEmbeddingFunctionCreate(refuseEF{dim: cfg.Dimension}),
		v2.WithDisableEFConfigStorage(),
		// One metadata option: WithHNSWSpaceCreate and WithCollectionMetadataCreate
		// would overwrite each other.
		v2.WithCollectionMetadataCreate(v2.NewMetadata(
			v2.NewStringAttribute(v2.HNSWSpace, string(embeddings.COSINE)),
			v2.NewIntAttribute(dimKey, int64(cfg.Dimension)))),
	)
	if err != nil {
		_ = client.Close()
		return nil, talos.E(talos.CodeChroma, op, "cannot get or create collection "+cfg.Collection, err)
	}
	have := int64(coll.Dimension())
	if md := coll.Metadata(); md != nil {
		if d, ok := md.GetInt(dimKey); ok && have == 0 {
			have = d
		}
	}
	if have != 0 && have != int64(cfg.Dimension) {
		_ = client.Close()
		return nil, talos.Errorf(talos.CodeConfigInvalid, op,
			"embedding dimension mismatch: collection %s holds %d-dimensional vectors, configured %d; use the embedder it was created with, or another collection",
			cfg.Collection, have, cfg.Dimension)
	}
	// Similarity is cosine on every backend (rag.Store): a collection made
	// elsewhere with another space would rank differently.
	if space := collectionSpace(coll); space != "" && space != string(embeddings.COSINE) {
		_ = client.Close()
		return nil, talos.Errorf(talos.CodeConfigInvalid, op,
			"collection %s uses distance space %q; talos needs %q (cosine similarity): use another collection name, or recreate this one",
			cfg.Collection, space, embeddings.COSINE)
	}
	apiBase := strings.TrimRight(cfg.URL, "/")
	if !strings.HasSuffix(apiBase, "/api/v2") {
		apiBase += "/api/v2"
	}
	return &Store{dim: cfg.Dimension, apiBase: apiBase, http: &http.Client{Timeout: cfg.Timeout}, client: client, coll: coll, log: log}, nil
}

// collectionSpace returns the collection's HNSW distance space from its
// configuration (Chroma ≥ 1.0) or its hnsw:space metadata; "" if neither
// says.
func collectionSpace(coll v2.Collection) string {
	if conf := coll.Configuration(); conf != nil {
		if h, ok := conf.GetRaw("hnsw"); ok {
			if m, ok := h.(map[string]any); ok {
				if sp, ok := m["space"].(string); ok && sp != "" {
					return sp
				}
			}
		}
	}
	if md := coll.Metadata(); md != nil {
		if sp, ok := md.GetString(v2.HNSWSpace); ok {
			return sp
		}
	}
	return ""
}

// DeleteCollection removes a collection (used by tests and benchmarks).
func DeleteCollection(ctx context.Context, url, name string) error {
	client, err := v2.NewHTTPClient(v2.WithBaseURL(url))
	if err != nil {
		return err
	}
	defer client.Close()
	return client.DeleteCollection(ctx, name)
}

// refuseEF satisfies chroma-go's need for an embedding function without
// ever embedding (the adapter passes embeddings), so no model is downloaded.
type refuseEF struct{ dim int }

// EmbedDocuments refuses: the adapter always passes embeddings.
func (refuseEF) EmbedDocuments(context.Context, []string) ([]embeddings.Embedding, error) {
	return nil, errors.New("rag/chroma: the store never embeds text; pass embeddings")
}

// EmbedQuery refuses: the adapter always passes embeddings.
func (refuseEF) EmbedQuery(context.Context, string) (embeddings.Embedding, error) {
	return nil, errors.New("rag/chroma: the store never embeds text; pass embeddings")
}

// Name identifies the placeholder.
func (refuseEF) Name() string { return "talos_external" }

// GetConfig reports the dimension.
func (e refuseEF) GetConfig() embeddings.EmbeddingFunctionConfig {
	return embeddings.EmbeddingFunctionConfig{"dimension": e.dim}
}

// DefaultSpace is cosine.
func (refuseEF) DefaultSpace() embeddings.DistanceMetric { return embeddings.COSINE }

// SupportedSpaces is cosine only.
func (refuseEF) SupportedSpaces() []embeddings.DistanceMetric {
	return []embeddings.DistanceMetric{embeddings.COSINE}
}

// where adapts a rag.Filter to chroma-go's WhereFilter: it marshals to the
// same where syntax, with full float64/int64 precision.
type where struct{ f rag.Filter }

// String renders the where JSON.
func (w where) String() string { b, _ := w.MarshalJSON(); return string(b) }

// Validate checks the filter.
func (w where) Validate() error {
	return w.f.Validate()
}

// MarshalJSON renders Chroma's where syntax.
func (w where) MarshalJSON() ([]byte, error) { return json.Marshal(flatten(w.f)) }

// UnmarshalJSON parses Chroma's where syntax.
func (w *where) UnmarshalJSON(b []byte) error {
	f, err := rag.ParseFilter(b)
	if err != nil {
		return err
	}
	w.f = f
	return nil
}

// flatten replaces And/Or with one child by the child: Chroma requires at
// least two clauses under $and and $or.
func flatten(f rag.Filter) rag.Filter {
	if f.Op != rag.OpAnd && f.Op != rag.OpOr {
		return f
	}
	if len(f.Children) == 1 {
		return flatten(f.Children[0])
	}
	out := f
	out.Children = make([]rag.Filter, len(f.Children))
	for i, c := range f.Children {
		out.Children[i] = flatten(c)
	}
	return out
}

func checkFilter(op string, f *rag.Filter) error {
	if f == nil {
		return nil
	}
	if err := f.Validate(); err != nil {
		return talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
	}
	return nil
}

// Dimension implements rag.Store.
func (s *Store) Dimension() int { return s.dim }

// toChromaMeta converts md; keys in drop are sent as null, which removes
// them from an existing record.
func toChromaMeta(md rag.Metadata, drop ...string) v2.DocumentMetadata {
	attrs := make([]*v2.MetaAttribute, 0, len(md)+len(drop))
	for _, k := range drop {
		attrs = append(attrs, v2.RemoveAttribute(k))
	}
	for k, v := range md {
		switch x := v.(type) {
		case string:
			attrs = append(attrs, v2.NewStringAttribute(k, x))
		case int64:
			attrs = append(attrs, v2.NewIntAttribute(k, x))
		case int:
			attrs = append(attrs, v2.NewIntAttribute(k, int64(x)))
		case float64:
			attrs = append(attrs, v2.NewFloatAttribute(k, x))
		case bool:
			attrs = append(attrs, v2.NewBoolAttribute(k, x))
		}
	}
	return v2.NewDocumentMetadata(attrs...)
}

func fromChromaMeta(md v2.DocumentMetadata) rag.Metadata {
	out := rag.Metadata{}
	if md == nil {
		return out
	}
	k, ok := md.(interface{ Keys() []string })
	if !ok {
		return out
	}
	for _, key := range k.Keys() {
		if v, ok := md.GetRaw(key); ok {
			switch mv := v.(type) {
			case v2.MetadataValue:
				v, _ = mv.GetRaw()
			case *v2.MetadataValue:
				v, _ = mv.GetRaw()
			}
			switch x := v.(type) {
			case string, int64, float64, bool:
				out[key] = x
			case int:
				out[key] = int64(x)
			}
		}
	}
	return out
}

// Upsert implements rag.Store.
func (s *Store) Upsert(ctx context.Context, recs []rag.Record) error {
	const op = "chroma.Upsert"
	if err := storecheck.Records(op, s.dim, recs); err != nil {
		return err
	}
	for start := 0; start < len(recs); start += UpsertBatch {
		part := recs[start:min(start+UpsertBatch, len(recs))]
		ids := make([]v2.DocumentID, len(part))
		docs := make([]string, len(part))
		embs := make([]embeddings.Embedding, len(part))
		metas := make([]v2.DocumentMetadata, len(part))
		for i, r := range part {
			ids[i] = v2.DocumentID(r.ID)
		}
		// Chroma's upsert merges metadata into an existing record; an upsert
		// here replaces it, so keys the new metadata lacks are removed.
		prev, err := s.coll.Get(ctx, v2.WithIDsGet(ids...), v2.WithIncludeGet(v2.IncludeMetadatas))
		if err != nil {
			return wrap(ctx, op, "reading the records to replace failed", err)
		}
		stale := map[string][]string{}
		for _, old := range rowsToRecords(prev, false) {
			stale[old.ID] = keysOf(old.Metadata)
		}
		for i, r := range part {
			docs[i] = r.Document
			embs[i] = embeddings.NewEmbeddingFromFloat32(rag.Normalize(r.Embedding))
			var drop []string
			for _, k := range stale[r.ID] {
				if _, keep := r.Metadata[k]; !keep {
					drop = append(drop, k)
				}
			}
			metas[i] = toChromaMeta(r.Metadata, drop...)
		}
		err = s.coll.Upsert(ctx, v2.WithIDs(ids...), v2.WithTexts(docs...), v2.WithEmbeddings(embs...), v2.WithMetadatas(metas...))
		if err != nil {
			return wrap(ctx, op, fmt.Sprintf("upsert of %d records failed", len(part)), err)
		}
	}
	return nil
}

func wrap(ctx context.Context, op, what string, err error) error {
	if ctx.Err() != nil {
		return talos.E(talos.CodeChroma, op, what, ctx.Err())
	}
	return talos.E(talos.CodeChroma, op, what+"; check that Chroma is running", err)
}

var allIncludes = []v2.Include{v2.IncludeDocuments, v2.IncludeMetadatas, v2.IncludeEmbeddings}

// Query implements rag.Store.
func (s *Store) Query(ctx context.Context, emb []float32, n int, f *rag.Filter) ([]rag.Match, error) {
	const op = "chroma.Query"
	if err := storecheck.Embedding(op, s.dim, emb); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "n is %d; it must be at least 1", n)
	}
	if err := checkFilter(op, f); err != nil {
		return nil, err
	}
	opts := []v2.CollectionQueryOption{
		v2.WithQueryEmbeddings(embeddings.NewEmbeddingFromFloat32(append([]float32(nil), emb...))),
		v2.WithNResults(n),
		v2.WithIncludeQuery(v2.IncludeDocuments, v2.IncludeMetadatas, v2.IncludeEmbeddings, v2.IncludeDistances),
	}
	if f != nil {
		opts = append(opts, v2.WithWhereQuery(&where{f: *f}))
	}
	res, err := s.coll.Query(ctx, opts...)
	if err != nil {
		return nil, wrap(ctx, op, "query failed", err)
	}
	groups := res.GetIDGroups()
	if len(groups) == 0 {
		return nil, nil
	}
	ids := groups[0]
	var docs v2.Documents
	var metas v2.DocumentMetadatas
	var embs embeddings.Embeddings
	var dists embeddings.Distances
	if g := res.GetDocumentsGroups(); len(g) > 0 {
		docs = g[0]
	}
	if g := res.GetMetadatasGroups(); len(g) > 0 {
		metas = g[0]
	}
	if g := res.GetEmbeddingsGroups(); len(g) > 0 {
		embs = g[0]
	}
	if g := res.GetDistancesGroups(); len(g) > 0 {
		dists = g[0]
	}
	out := make([]rag.Match, 0, len(ids))
	for i, id := range ids {
		m := rag.Match{Record: rag.Record{ID: string(id), Metadata: rag.Metadata{}}}
		if i < len(docs) && docs[i] != nil {
			m.Document = docs[i].ContentString()
		}
		if i < len(metas) {
			m.Metadata = fromChromaMeta(metas[i])
		}
		if i < len(embs) && embs[i] != nil {
			m.Embedding = embs[i].ContentAsFloat32()
		}
		if i < len(dists) {
			m.Similarity = 1 - float64(dists[i])
		}
		out = append(out, m)
	}
	return out, nil
}

func rowsToRecords(res v2.GetResult, withEmb bool) []rag.Record {
	ids := res.GetIDs()
	docs := res.GetDocuments()
	metas := res.GetMetadatas()
	embs := res.GetEmbeddings()
	out := make([]rag.Record, len(ids))
	for i, id := range ids {
		r := rag.Record{ID: string(id)}
		if i < len(docs) && docs[i] != nil {
			r.Document = docs[i].ContentString()
		}
		if i < len(metas) {
			r.Metadata = fromChromaMeta(metas[i])
		} else {
			r.Metadata = rag.Metadata{}
		}
		if withEmb && i < len(embs) && embs[i] != nil {
			r.Embedding = embs[i].ContentAsFloat32()
		}
		out[i] = r
	}
	return out
}

// Get implements rag.Store.
func (s *Store) Get(ctx context.Context, ids []string) ([]rag.Record, error) {
	const op = "chroma.Get"
	var out []rag.Record
	uniq := dedupe(ids)
	for start := 0; start < len(uniq); start += UpsertBatch {
		part := uniq[start:min(start+UpsertBatch, len(uniq))]
		res, err := s.coll.Get(ctx, v2.WithIDsGet(docIDs(part)...), v2.WithIncludeGet(allIncludes...))
		if err != nil {
			return nil, wrap(ctx, op, "get failed", err)
		}
		out = append(out, rowsToRecords(res, true)...)
	}
	return out, nil
}

func dedupe(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if id != "" && !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

func docIDs(ids []string) []v2.DocumentID {
	out := make([]v2.DocumentID, len(ids))
	for i, id := range ids {
		out[i] = v2.DocumentID(id)
	}
	return out
}

// UpdateMetadata implements rag.Store with one call to Chroma's update
// endpoint (which merges metadata keys and ignores unknown ids). The
// endpoint is called directly: chroma-go v0.4.0 sends an empty embeddings
// list with a metadata-only update, which the server rejects.
func (s *Store) UpdateMetadata(ctx context.Context, updates map[string]rag.Metadata) error {
	const op = "chroma.UpdateMetadata"
	ids := make([]string, 0, len(updates))
	for id, md := range updates {
		if err := md.Validate(); err != nil {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: %v", id, err)
		}
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for start := 0; start < len(ids); start += UpsertBatch {
		part := ids[start:min(start+UpsertBatch, len(ids))]
		metas := make([]jsonMeta, len(part))
		for i, id := range part {
			metas[i] = jsonMeta(updates[id])
		}
		body, err := json.Marshal(struct {
			IDs       []string   `json:"ids"`
			Metadatas []jsonMeta `json:"metadatas"`
		}{part, metas})
		if err != nil {
			return talos.E(talos.CodeConfigInvalid, op, "metadata cannot be encoded", err)
		}
		if err := s.post(ctx, "update", body); err != nil {
			return wrap(ctx, op, "metadata update failed", err)
		}
	}
	return nil
}

// post sends body to an endpoint of the collection.
func (s *Store) post(ctx context.Context, endpoint string, body []byte) error {
	u, err := url.JoinPath(s.apiBase, "tenants", s.coll.Tenant().Name(), "databases", s.coll.Database().Name(), "collections", s.coll.ID(), endpoint)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, bytes.TrimSpace(msg))
	}
	return nil
}

// jsonMeta marshals metadata with floats always written as floats (an
// integral float64 such as 2.0 would otherwise reach Chroma as an int).
type jsonMeta rag.Metadata

// MarshalJSON writes the typed metadata object.
func (m jsonMeta) MarshalJSON() ([]byte, error) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		b.Write(kb)
		b.WriteByte(':')
		if f, ok := m[k].(float64); ok {
			v := strconv.FormatFloat(f, 'g', -1, 64)
			if !strings.ContainsAny(v, ".eE") {
				v += ".0"
			}
			b.WriteString(v)
			continue
		}
		vb, err := json.Marshal(m[k])
		if err != nil {
			return nil, err
		}
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func keysOf(md rag.Metadata) []string {
	out := make([]string, 0, len(md))
	for k := range md {
		out = append(out, k)
	}
	return out
}

// Delete implements rag.Store, in batches of DeleteBatch ids.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	const op = "chroma.Delete"
	uniq := dedupe(ids)
	for start := 0; start < len(uniq); start += DeleteBatch {
		part := uniq[start:min(start+DeleteBatch, len(uniq))]
		if err := s.coll.Delete(ctx, v2.WithIDsDelete(docIDs(part)...)); err != nil {
			return wrap(ctx, op, fmt.Sprintf("delete of %d ids failed", len(part)), err)
		}
	}
	return nil
}

// DeleteWhere implements rag.Store: it lists the matching ids, then deletes
// them in batches, so it can report how many went.
func (s *Store) DeleteWhere(ctx context.Context, f rag.Filter) (int, error) {
	const op = "chroma.DeleteWhere"
	if err := checkFilter(op, &f); err != nil {
		return 0, err
	}
	var ids []string
	for off := 0; ; off += pageSize {
		res, err := s.coll.Get(ctx, v2.WithWhereGet(&where{f: f}), v2.WithIncludeGet(v2.IncludeMetadatas),
			v2.WithLimitGet(pageSize), v2.WithOffsetGet(off))
		if err != nil {
			return 0, wrap(ctx, op, "listing the matching records failed", err)
		}
		for _, id := range res.GetIDs() {
			ids = append(ids, string(id))
		}
		if len(res.GetIDs()) < pageSize {
			break
		}
	}
	if err := s.Delete(ctx, ids); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// Count implements rag.Store.
func (s *Store) Count(ctx context.Context) (int, error) {
	n, err := s.coll.Count(ctx)
	if err != nil {
		return 0, wrap(ctx, "chroma.Count", "count failed", err)
	}
	return n, nil
}

// List implements rag.Store.
func (s *Store) List(ctx context.Context, opts rag.ListOptions) ([]rag.Record, error) {
	const op = "chroma.List"
	if err := checkFilter(op, opts.Where); err != nil {
		return nil, err
	}
	if opts.Offset < 0 || opts.Limit < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "offset %d and limit %d must not be negative", opts.Offset, opts.Limit)
	}
	include := []v2.Include{v2.IncludeDocuments, v2.IncludeMetadatas}
	if opts.Embeddings {
		include = append(include, v2.IncludeEmbeddings)
	}
	var out []rag.Record
	off := opts.Offset
	for {
		limit := pageSize
		if opts.Limit > 0 {
			limit = min(pageSize, opts.Limit-len(out))
		}
		gopts := []v2.CollectionGetOption{v2.WithIncludeGet(include...), v2.WithLimitGet(limit), v2.WithOffsetGet(off)}
		if opts.Where != nil {
			gopts = append(gopts, v2.WithWhereGet(&where{f: *opts.Where}))
		}
		switch {
		case opts.Contains != "" && opts.ContainsFold:
			// $contains is case-sensitive on the server; its $regex takes
			// (?i) and is the same pattern the other adapters match.
			gopts = append(gopts, v2.WithWhereDocumentGet(v2.Regex(storecheck.FoldPattern(opts.Contains))))
		case opts.Contains != "":
			gopts = append(gopts, v2.WithWhereDocumentGet(v2.Contains(opts.Contains)))
		}
		res, err := s.coll.Get(ctx, gopts...)
		if err != nil {
			return nil, wrap(ctx, op, "listing failed", err)
		}
		page := rowsToRecords(res, opts.Embeddings)
		out = append(out, page...)
		off += len(page)
		if len(page) < limit || (opts.Limit > 0 && len(out) >= opts.Limit) {
			return out, nil
		}
	}
}

// Close implements rag.Store.
func (s *Store) Close() error { return s.client.Close() }
