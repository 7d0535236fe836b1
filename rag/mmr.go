package rag

import "math"

// Retrieval constants.
const (
	// DefaultTopK is the number of memories a query returns.
	DefaultTopK = 10
	// MaxTopK caps top_k and the over-fetch.
	MaxTopK = 50
	// OverFetchFactor: the store is asked for min(3·top_k, 50) candidates.
	OverFetchFactor = 3
	// DefaultLambda trades relevance (1) against diversity (0) in MMR.
	DefaultLambda = 0.5
	// DefaultThreshold is the minimum similarity of a returned memory,
	// applied after MMR, for an embedder that does not give its own
	// (ThresholdEmbedder): the spec's 0.7, which assumes a semantic
	// embedder.
	DefaultThreshold = 0.7
	// DefaultKeywordThreshold is the keyword score (KeywordSearcher: the
	// IDF-weighted share of the query's words a memory holds) at or above
	// which a memory is returned whatever its vector similarity. At 0.4 a
	// memory holding two of a question's three or four content words
	// passes; calibrated with rag/hashembed on rag/testdata/recall.json
	// (0.5 misses 3 of 35 answers there, 0.4 none).
	DefaultKeywordThreshold = 0.4
)

// clampTopK clamps k to [1, MaxTopK]; 0 means DefaultTopK.
func clampTopK(k int) int {
	switch {
	case k == 0:
		return DefaultTopK
	case k < 1:
		return 1
	case k > MaxTopK:
		return MaxTopK
	}
	return k
}

// overFetch is min(3·k, 50) for k clamped by clampTopK.
func overFetch(k int) int { return min(OverFetchFactor*clampTopK(k), MaxTopK) }

// MMR picks up to k candidates by maximal marginal relevance: first the most
// similar to the query, then repeatedly the one maximising
// λ·sim(q,d) − (1−λ)·max over picked s of cos(d,s). Ties go to the earlier
// candidate (strict >). It returns indexes into cands in pick order.
func MMR(cands []Match, k int, lambda float64) []int {
	if k <= 0 || len(cands) == 0 {
		return nil
	}
	picked := make([]int, 0, min(k, len(cands)))
	used := make([]bool, len(cands))
	// maxSim[i] = max cosine of candidate i to anything picked so far.
	maxSim := make([]float64, len(cands))
	for i := range maxSim {
		maxSim[i] = math.Inf(-1)
	}
	first := 0
	for i := 1; i < len(cands); i++ {
		if cands[i].Similarity > cands[first].Similarity {
			first = i
		}
	}
	pick := func(i int) {
		picked = append(picked, i)
		used[i] = true
		for j := range cands {
			if !used[j] {
				if s := Cosine(cands[j].Embedding, cands[i].Embedding); s > maxSim[j] {
					maxSim[j] = s
				}
			}
		}
	}
	pick(first)
	for len(picked) < k && len(picked) < len(cands) {
		best, bestScore := -1, math.Inf(-1)
		for j := range cands {
			if used[j] {
				continue
			}
			score := lambda*cands[j].Similarity - (1-lambda)*maxSim[j]
			if best < 0 || score > bestScore {
				best, bestScore = j, score
			}
		}
		pick(best)
	}
	return picked
}
