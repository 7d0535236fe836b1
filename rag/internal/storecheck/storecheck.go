package storecheck

import (
	"math"
	"regexp"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// Records checks records before an upsert: non-empty unique ids,
// embeddings of dimension dim with finite values, not all zero (a zero
// vector has no direction to normalise or compare), and metadata values of a
// supported type. op names the caller in the error.
func Records(op string, dim int, recs []rag.Record) error {
	seen := make(map[string]struct{}, len(recs))
	for i, r := range recs {
		if r.ID == "" {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %d: id is empty; every memory needs a non-empty id", i)
		}
		if _, dup := seen[r.ID]; dup {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %d: id %q appears twice in one upsert; ids must be unique", i, r.ID)
		}
		seen[r.ID] = struct{}{}
		if err := Embedding(op, dim, r.Embedding); err != nil {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: %s", r.ID, err.(*talos.Error).Message)
		}
		if IsZero(r.Embedding) {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: the embedding is all zeros; cosine similarity needs a non-zero vector (check the embedder's output for this document)", r.ID)
		}
		if err := r.Metadata.Validate(); err != nil {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: %v", r.ID, err)
		}
	}
	return nil
}

// Embedding returns a T010 error when v does not have dim finite values.
func Embedding(op string, dim int, v []float32) error {
	if len(v) != dim {
		return talos.Errorf(talos.CodeConfigInvalid, op,
			"embedding dimension mismatch: got %d values, the collection holds %d; use the embedder the collection was created with, or a new collection", len(v), dim)
	}
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return talos.Errorf(talos.CodeConfigInvalid, op, "embedding value %d is %v; embeddings must be finite", i, x)
		}
	}
	return nil
}

// IsZero reports whether every value of v is 0: such a vector has no
// direction to normalise or compare.
func IsZero(v []float32) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}

// Match reports whether md passes the optional filter f: nil matches
// everything.
func Match(f *rag.Filter, md rag.Metadata) bool { return f == nil || f.Match(md) }

// FoldPattern is the regular expression of a case-insensitive
// rag.ListOptions.Contains: sub with its metacharacters quoted, under (?i).
// Go's regexp and the Rust regex engine of a Chroma server read it the same
// way, so every backend folds case identically.
func FoldPattern(sub string) string { return "(?i)" + regexp.QuoteMeta(sub) }

// DocumentMatcher returns the document test of o.Contains and
// o.ContainsFold, for adapters that filter documents themselves; nil when
// Contains is empty (every document matches).
func DocumentMatcher(o rag.ListOptions) func(doc string) bool {
	switch {
	case o.Contains == "":
		return nil
	case o.ContainsFold:
		return regexp.MustCompile(FoldPattern(o.Contains)).MatchString
	}
	sub := o.Contains
	return func(doc string) bool { return strings.Contains(doc, sub) }
}
