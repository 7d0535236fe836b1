package sqlstore

import (
	"context"
	"sort"
	"strings"
	"unicode"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// stopWords are left out of the keyword index: they match almost every
// memory and say nothing about it.
var stopWords = map[string]bool{
	"a": true, "an": true, "the": true, "and": true, "or": true, "of": true, "to": true, "in": true, "on": true,
	"at": true, "is": true, "are": true, "was": true, "be": true, "it": true, "for": true, "by": true, "with": true,
	"does": true, "do": true, "what": true, "when": true, "where": true, "how": true, "which": true, "who": true,
	"my": true, "our": true, "i": true, "we": true, "you": true, "this": true, "that": true, "every": true,
}

// Words returns the keyword tokens of text: lower-cased runs of letters and
// digits of at least two characters, stop words left out, each once, in
// order of appearance.
func Words(text string) []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
		if len([]rune(f)) < 2 || stopWords[f] || seen[f] {
			continue
		}
		seen[f] = true
		out = append(out, f)
	}
	return out
}

func (s *Store) indexWords(i int) {
	for _, w := range Words(s.docs[i]) {
		set := s.words[w]
		if set == nil {
			set = map[int]struct{}{}
			s.words[w] = set
		}
		set[i] = struct{}{}
	}
}

func (s *Store) unindexWords(i int) {
	for _, w := range Words(s.docs[i]) {
		if set := s.words[w]; set != nil {
			delete(set, i)
			if len(set) == 0 {
				delete(s.words, w)
			}
		}
	}
}

// MaxKeywords is how many of a query's words KeywordSearch looks for: the
// rarest ones in the collection.
const MaxKeywords = 6

// KeywordSearch returns up to n records sharing words with text, the most
// shared words first (rarer words weigh more), optionally filtered by where.
// Only the query's MaxKeywords rarest words count. Similarity is the
// IDF-weighted fraction of those words a record holds (0–1).
func (s *Store) KeywordSearch(ctx context.Context, text string, n int, where *rag.Filter) ([]rag.Match, error) {
	const op = "sqlstore.KeywordSearch"
	if err := ctx.Err(); err != nil {
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
	words := Words(text)
	s.mu.RLock()
	defer s.mu.RUnlock()
	type term struct {
		set map[int]struct{}
		idf float32
	}
	var terms []term
	for _, w := range words {
		set := s.words[w]
		// Inverse document frequency, so "password" counts for more than
		// a word every memory has.
		idf := 1.0 / (1.0 + float64(len(set))/float64(max(1, len(s.slot))))
		terms = append(terms, term{set, float32(idf)})
	}
	// The rarest MaxKeywords words are the query's keywords: they say what
	// it is about, and a long query's common words would make every
	// search visit most of the index.
	sort.SliceStable(terms, func(a, b int) bool { return len(terms[a].set) < len(terms[b].set) })
	if len(terms) > MaxKeywords {
		terms = terms[:MaxKeywords]
	}
	total := 0.0
	for _, t := range terms {
		total += float64(t.idf)
	}
	for len(terms) > 0 && len(terms[0].set) == 0 {
		terms = terms[1:]
	}
	if len(terms) == 0 {
		return nil, nil
	}
	// Scores accumulate in a dense array indexed by slot (a map of tens of
	// thousands of entries for a common word costs far more), and the n
	// best are kept in a heap, as in Query.
	score := make([]float32, len(s.ids))
	var touched []int
	for _, t := range terms {
		for i := range t.set {
			if score[i] == 0 {
				touched = append(touched, i)
			}
			score[i] += t.idf
		}
	}
	hits := make([]hit, 0, n)
	for _, i := range touched {
		if where != nil && !where.Match(s.metas[i]) {
			continue
		}
		c := hit{i, float32(float64(score[i]) / total)}
		if len(hits) < n {
			hits = append(hits, c)
			up(hits, len(hits)-1, s)
		} else if s.better(c, hits[0]) {
			hits[0] = c
			down(hits, 0, s)
		}
	}
	sort.Slice(hits, func(a, b int) bool { return s.better(hits[a], hits[b]) })
	out := make([]rag.Match, len(hits))
	for k, h := range hits {
		out[k] = rag.Match{Record: s.record(h.slot, true), Similarity: float64(h.sim)}
	}
	return out, nil
}
