// Package hashembed is the offline default rag.Embedder: deterministic
// feature hashing of words, word pairs and character 3-grams into a
// fixed-size vector, L2-normalised.
//
// It is LEXICAL, not semantic: texts that share words (or pieces of words)
// are close, synonyms and paraphrases are not ("car" and "automobile" are
// unrelated). It needs no model, no network and no GPU, gives the same vector
// for the same text on every machine and every run, and is fast (a few
// microseconds per sentence). Use Ollama or Gemini embeddings (rag/ollamaembed,
// rag/geminiembed) when meaning matters.
//
// Features and weights: each lower-cased word (letters and digits, split on
// everything else) counts 1.0, each pair of adjacent words 0.5, and each
// character 3-gram of a word padded with spaces 0.25. Each feature is hashed
// with 64-bit FNV-1a; the low bits pick the bucket and one high bit the sign
// (the "hashing trick" with signed buckets, which keeps collisions unbiased).
package hashembed
