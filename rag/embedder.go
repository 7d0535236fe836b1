package rag

import "context"

// Embedder turns texts into vectors. Implementations: rag/hashembed (offline,
// lexical), rag/ollamaembed (Ollama /api/embed) and rag/geminiembed (Gemini
// EmbedContent).
type Embedder interface {
	// Embed returns one vector per text, in order.
	Embed(ctx context.Context, texts []string) ([][]float32, error)
	// Dimension is the length of the vectors, or 0 when it is only known
	// after the first call (CheckDimension then probes it).
	Dimension() int
	// Name identifies the embedder and its model, e.g. "hashembed-384".
	Name() string
}

// ThresholdEmbedder is an Embedder that knows its own similarity scale: the
// minimum cosine similarity at which two of its vectors mean "related".
// NewRetriever takes the threshold from the embedder when
// RetrieverConfig.Threshold is 0 (DefaultThreshold for an embedder without
// one). The values differ a lot: a semantic model puts paraphrases above
// 0.7, the lexical rag/hashembed puts a question and the note answering it
// around 0.3–0.5.
type ThresholdEmbedder interface {
	Embedder
	// SimilarityThreshold is the minimum similarity of a returned memory
	// for this embedder, in (0, 1].
	SimilarityThreshold() float64
}

// ThresholdFor returns the similarity threshold for emb: its own
// (ThresholdEmbedder) or DefaultThreshold.
func ThresholdFor(emb Embedder) float64 {
	if t, ok := emb.(ThresholdEmbedder); ok {
		if v := t.SimilarityThreshold(); v > 0 && v <= 1 {
			return v
		}
	}
	return DefaultThreshold
}
