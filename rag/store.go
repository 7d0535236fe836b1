package rag

import (
	"context"
	"math"

	"github.com/talos-ironclad/talos"
)

// Record is one stored memory: an id, its text, its embedding and its
// metadata. Metadata values are string, int64, float64 or bool (the scalar
// types every backend can store).
type Record struct {
	ID        string
	Document  string
	Embedding []float32
	Metadata  Metadata
}

// Match is a Record returned by a similarity query, with its cosine
// similarity to the query embedding (1 = same direction, 0 = unrelated).
type Match struct {
	Record
	Similarity float64
}

// ListOptions selects a page of records for Store.List.
type ListOptions struct {
	// Where filters on metadata; nil selects every record.
	Where *Filter
	// Contains, when set, keeps only documents containing this substring
	// (case-sensitive, as Chroma's where_document $contains, unless
	// ContainsFold is set).
	Contains string
	// ContainsFold makes Contains ignore case: "docker" finds "Docker
	// Restart Notes" and "DOCKER". Every backend folds case the same way:
	// Unicode simple case folding of the substring taken literally.
	ContainsFold bool
	// Offset skips that many matching records.
	Offset int
	// Limit caps the page; 0 means every remaining record.
	Limit int
	// Embeddings asks for the embeddings too (they are large: leave it off
	// when only metadata is needed).
	Embeddings bool
}

// Store is long-term memory: a vector collection with metadata. Every
// adapter (rag/sqlstore, rag/chroma, rag/chromem and the in-memory ragtest
// store) passes the conformance suite in package ragtest.
//
// Embeddings are stored L2-normalised: Upsert scales every embedding to unit
// length (Normalize) and rejects an all-zero one, so Get, List and Query
// return the unit vector whatever the embedder produced, on every backend
// (chromem-go normalises on add anyway). Similarity is cosine on every
// backend (the Chroma collection is created with hnsw:space "cosine"), so
// normalising changes no ranking or similarity; and since a unit vector is
// stored unchanged, archiving a record and upserting it again gives back the
// same stored vector.
//
// The order of List pages is stable between calls when nothing is written in
// between, so paging with Offset/Limit visits every record exactly once.
type Store interface {
	// Dimension is the embedding dimension of the collection.
	Dimension() int
	// Upsert inserts records or replaces those with the same id. Every
	// record needs a non-empty id and a finite, non-zero embedding of
	// Dimension() values; the embedding is stored L2-normalised.
	Upsert(ctx context.Context, recs []Record) error
	// Query returns up to n records closest to embedding (cosine), most
	// similar first, with embeddings, optionally filtered by where.
	Query(ctx context.Context, embedding []float32, n int, where *Filter) ([]Match, error)
	// Get returns the records with these ids (with embeddings). Unknown ids
	// are skipped; the order of the result is unspecified.
	Get(ctx context.Context, ids []string) ([]Record, error)
	// UpdateMetadata merges the given keys into the metadata of existing
	// records. Unknown ids are ignored.
	UpdateMetadata(ctx context.Context, updates map[string]Metadata) error
	// Delete removes the records with these ids; unknown ids are ignored.
	Delete(ctx context.Context, ids []string) error
	// DeleteWhere removes every record matching where and returns how many.
	DeleteWhere(ctx context.Context, where Filter) (int, error)
	// Count returns the number of stored records.
	Count(ctx context.Context) (int, error)
	// List returns a page of records, with documents and metadata and, on
	// request, embeddings.
	List(ctx context.Context, opts ListOptions) ([]Record, error)
	// Close releases the store's resources.
	Close() error
}

// KeywordSearcher is a Store that also finds records by the words they
// share with a text, whatever the embedder thinks of them (rag/sqlstore
// implements it). The Retriever checks for it with a type assertion and
// merges its hits with the vector candidates.
type KeywordSearcher interface {
	// KeywordSearch returns up to n records sharing words with text, with
	// embeddings, best first, optionally filtered by where. A Match's
	// Similarity is the keyword score in [0, 1]: the share of the query's
	// words the record holds (1 = all of them).
	KeywordSearch(ctx context.Context, text string, n int, where *Filter) ([]Match, error)
}

// CheckDimension embeds a probe text and verifies that the embedder's
// dimension matches the store's. Call it at start-up: a mismatch is a clear
// T010 error instead of a failure on the first write.
func CheckDimension(ctx context.Context, store Store, emb Embedder) error {
	const op = "rag.CheckDimension"
	vecs, err := emb.Embed(ctx, []string{"dimension probe"})
	if err != nil {
		return talos.E(talos.CodeConfigInvalid, op, "the embedder "+emb.Name()+" failed on a probe text; check that it is reachable and configured", err)
	}
	if len(vecs) != 1 {
		return talos.Errorf(talos.CodeConfigInvalid, op, "the embedder %s returned %d vectors for 1 text", emb.Name(), len(vecs))
	}
	if got, want := len(vecs[0]), store.Dimension(); got != want {
		return talos.Errorf(talos.CodeConfigInvalid, op,
			"embedding dimension mismatch: the embedder %s produces %d values, the collection holds %d; configure the same embedder (and dimension) the collection was created with, or use a new collection",
			emb.Name(), got, want)
	}
	if d := emb.Dimension(); d != 0 && d != len(vecs[0]) {
		return talos.Errorf(talos.CodeConfigInvalid, op, "the embedder %s declares dimension %d but produced %d values", emb.Name(), d, len(vecs[0]))
	}
	return nil
}

// Cosine returns the cosine similarity of a and b; 0 when either has zero
// norm or their lengths differ.
func Cosine(a, b []float32) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 0
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	if na == 0 || nb == 0 {
		return 0
	}
	return dot / (math.Sqrt(na) * math.Sqrt(nb))
}

// unitTolerance is how far from 1 a vector's L2 norm may be for Normalize
// to treat it as unit length already (chromem-go uses the same tolerance).
const unitTolerance = 1e-6

// Normalize returns v scaled to unit L2 norm (a copy). A vector whose norm
// is within 1e-6 of 1 is copied unchanged, so normalising twice
// gives the same values; a zero vector is returned unchanged.
func Normalize(v []float32) []float32 {
	var n float64
	for _, x := range v {
		n += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if n == 0 || math.Abs(math.Sqrt(n)-1) < unitTolerance {
		copy(out, v)
		return out
	}
	inv := 1 / math.Sqrt(n)
	for i, x := range v {
		out[i] = float32(float64(x) * inv)
	}
	return out
}
