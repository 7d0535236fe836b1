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
