// Package geminiembed is a rag.Embedder on Google's Gemini embedding models
// (google.golang.org/genai, Models.EmbedContent).
//
// Texts leave the machine: use it only for memories you may send to Google.
// The API key is never logged. OutputDimensionality is requested from the
// model, so the collection's dimension can be chosen (for example 768).
package geminiembed
