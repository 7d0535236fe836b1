// Package ollamaembed is a rag.Embedder on a local Ollama server's
// /api/embed endpoint (the Ollama api package), for semantic embeddings such
// as nomic-embed-text or all-minilm.
//
// The dimension depends on the model: set Config.Dimension to check every
// answer against it, or leave it 0 and let rag.CheckDimension probe it at
// start-up against the collection.
package ollamaembed
