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

// KeywordSearch returns up to n records sharing words with text, the most
// shared words first (rarer words weigh more), optionally filtered by where.
// Similarity is the weighted fraction of the query's words found (0–1).
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
	score := map[int]float64{}
	total := 0.0
	for _, w := range words {
		set := s.words[w]
		// Inverse document frequency, so "password" counts for more than
		// a word every memory has.
		idf := 1.0 / (1.0 + float64(len(set))/float64(max(1, len(s.slot))))
		total += idf
		for i := range set {
			score[i] += idf
		}
	}
	var hits []hit
	for i, sc := range score {
		if where != nil && !where.Match(s.metas[i]) {
			continue
		}
		hits = append(hits, hit{i, float32(sc / total)})
	}
	sort.Slice(hits, func(a, b int) bool { return s.better(hits[a], hits[b]) })
	if len(hits) > n {
		hits = hits[:n]
	}
	out := make([]rag.Match, len(hits))
	for k, h := range hits {
		out[k] = rag.Match{Record: s.record(h.slot, true), Similarity: float64(h.sim)}
	}
	return out, nil
}
