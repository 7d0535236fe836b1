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

// posting lists the slots holding one word, as slot<<32 | generation:
// an entry whose generation is not its slot's current one is stale (the
// slot's words left the index since) and skipped. Stale entries are
// dropped when they are half of the list, so removal costs O(1) amortised
// and a search reads a flat slice instead of a map.
type posting struct {
	entries []uint64
	stale   int
}

// live is the number of slots holding the word.
func (p *posting) live() int {
	if p == nil {
		return 0
	}
	return len(p.entries) - p.stale
}

// indexWords adds slot i's words under its current generation. s.mu held
// for writing.
func (s *Store) indexWords(i int) {
	e := uint64(i)<<32 | uint64(s.gen[i])
	for _, w := range Words(s.docs[i]) {
		p := s.words[w]
		if p == nil {
			p = &posting{}
			s.words[w] = p
		}
		p.entries = append(p.entries, e)
	}
}

// unindexWords takes slot i's words out of the index: its generation moves
// on, so their entries go stale. s.mu held for writing.
func (s *Store) unindexWords(i int) {
	s.gen[i]++
	for _, w := range Words(s.docs[i]) {
		p := s.words[w]
		if p == nil {
			continue
		}
		p.stale++
		if 2*p.stale < len(p.entries) {
			continue
		}
		kept := p.entries[:0]
		for _, e := range p.entries {
			if s.current(e) {
				kept = append(kept, e)
			}
		}
		p.entries, p.stale = kept, 0
		if len(kept) == 0 {
			delete(s.words, w)
		}
	}
}

// current reports whether a posting entry is not stale.
func (s *Store) current(e uint64) bool {
	return s.gen[int(e>>32)] == uint32(e)
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
	s.syncRead(ctx, false)
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
		p   *posting
		idf float32
	}
	var terms []term
	for _, w := range words {
		p := s.words[w]
		// Inverse document frequency, so "password" counts for more than
		// a word every memory has.
		idf := 1.0 / (1.0 + float64(p.live())/float64(max(1, len(s.slot))))
		terms = append(terms, term{p, float32(idf)})
	}
	// The rarest MaxKeywords words are the query's keywords: they say what
	// it is about, and a long query's common words would make every
	// search visit most of the index.
	sort.SliceStable(terms, func(a, b int) bool { return terms[a].p.live() < terms[b].p.live() })
	if len(terms) > MaxKeywords {
		terms = terms[:MaxKeywords]
	}
	total := 0.0
	for _, t := range terms {
		total += float64(t.idf)
	}
	for len(terms) > 0 && terms[0].p.live() == 0 {
		terms = terms[1:]
	}
	if len(terms) == 0 {
		return nil, nil
	}
	// Scores accumulate in a dense array indexed by slot, and the n best
	// are kept in a heap, as in Query.
	score := make([]float32, len(s.ids))
	var touched []int
	for _, t := range terms {
		for _, e := range t.p.entries {
			if !s.current(e) {
				continue
			}
			i := int(e >> 32)
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
