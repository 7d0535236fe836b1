package rag

import (
	"math"
	"strings"
	"time"
	"unicode"
)

// Relevance weights and constants.
const (
	WeightSimilarity = 0.40
	WeightKeyword    = 0.25
	WeightMetadata   = 0.20
	WeightRecency    = 0.15

	// DefaultRecencyHalfLife is the half-life of the recency component
	// (90 days).
	DefaultRecencyHalfLife = 90 * 24 * time.Hour
	// MissingRecency is the recency of a memory without created_at.
	MissingRecency = 0.5
	// DefaultSourceQuality is the source quality of an unknown source.
	DefaultSourceQuality = 0.5
	// DefaultFeedback is the user feedback score when none is recorded.
	DefaultFeedback = 0.5
)

// RelevanceWeights weigh the four components of the relevance score.
type RelevanceWeights struct {
	Similarity, Keyword, Metadata, Recency float64
}

// DefaultRelevanceWeights returns the spec's 0.40/0.25/0.20/0.15.
func DefaultRelevanceWeights() RelevanceWeights {
	return RelevanceWeights{WeightSimilarity, WeightKeyword, WeightMetadata, WeightRecency}
}

// Relevance is the parts and total of one memory's relevance score.
type Relevance struct {
	Similarity, Keyword, Metadata, Recency float64
	Score                                  float64
}

// Combine returns clamp01(w·parts), the relevance score.
func (w RelevanceWeights) Combine(sim, keyword, metadata, recency float64) float64 {
	return clamp01(w.Similarity*sim + w.Keyword*keyword + w.Metadata*metadata + w.Recency*recency)
}

func clamp01(x float64) float64 {
	if math.IsNaN(x) || x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// wordSet splits text into the set of lower-case words (letters and digits)
// the keyword score compares.
func wordSet(text string) map[string]struct{} {
	words := strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	})
	set := make(map[string]struct{}, len(words))
	for _, w := range words {
		set[w] = struct{}{}
	}
	return set
}

// keywordScore is the Jaccard similarity |Q∩D| / |Q∪D| of the word sets of
// query and doc; 0 for an empty query.
func keywordScore(query, doc string) float64 {
	return jaccard(wordSet(query), wordSet(doc))
}

func jaccard(q, d map[string]struct{}) float64 {
	if len(q) == 0 {
		return 0
	}
	inter := 0
	for w := range q {
		if _, ok := d[w]; ok {
			inter++
		}
	}
	union := len(q) + len(d) - inter
	return float64(inter) / float64(union)
}

// sourceQuality rates where a memory came from. The spec leaves the table
// open (default 0.5); ours ranks what a person said above tool output above
// the open web.
func sourceQuality(s Source) float64 {
	switch s {
	case SourceUser:
		return 0.8
	case SourceTool:
		return 0.6
	case SourceModel, SourceSkill:
		return 0.5
	case SourceWeb:
		return 0.3
	}
	return DefaultSourceQuality
}

// metadataScore is min(1, 0.4·source_quality + 0.3·type_match +
// 0.2·verified + 0.1·user_feedback). type_match is 1 when
// queryType is set and equals the memory's type (default "general");
// verified is the trusted flag; user_feedback is the "feedback" key
// (default 0.5).
func metadataScore(md Metadata, queryType string) float64 {
	m := md.Memory()
	typeMatch := 0.0
	docType := m.Type
	if docType == "" {
		docType = DefaultType
	}
	if queryType != "" && strings.EqualFold(queryType, docType) {
		typeMatch = 1
	}
	verified := 0.0
	if m.Trusted {
		verified = 1
	}
	feedback := DefaultFeedback
	if f, ok := md.Number(KeyFeedback); ok {
		feedback = clamp01(f)
	}
	return math.Min(1, 0.4*sourceQuality(m.Source)+0.3*typeMatch+0.2*verified+0.1*feedback)
}

// recencyScore is exp(−ln2/halfLife · age), clamped to [0,1]; a zero
// created time gives MissingRecency and a future one 1.
func recencyScore(created, now time.Time, halfLife time.Duration) float64 {
	if created.IsZero() {
		return MissingRecency
	}
	if halfLife <= 0 {
		halfLife = DefaultRecencyHalfLife
	}
	age := now.Sub(created)
	if age <= 0 {
		return 1
	}
	return clamp01(math.Exp(-math.Ln2 * age.Seconds() / halfLife.Seconds()))
}
