// Package rag is Talos's long-term and short-term memory: a vector store of
// memories with one metadata schema, embedders, a short-term conversation
// history, and a Retriever that turns a question into a context that fits
// a token budget.
//
// # Pieces
//
//   - Store (store.go): upsert, similarity query with metadata filters, get,
//     delete by ids or by filter, count, and paged listing. Adapters:
//     rag/sqlstore (in the embedded SQLite file or PostgreSQL, crash-safe,
//     with keyword search; the default), rag/chromem (embedded chromem-go
//     directory), rag/chroma (a Chroma server) and ragtest.MemoryStore
//     (tests). All pass ragtest.RunStore. A store may also be a
//     KeywordSearcher (rag/sqlstore is).
//     Every store keeps embeddings L2-normalised (Upsert scales them to
//     unit length and refuses an all-zero one) and ranks by cosine.
//   - Filter (filter.go): Chroma's "where" language ($eq $ne $gt $gte $lt
//     $lte $in $nin $and $or) with one semantics on every backend, that of
//     a Chroma server: a record without the key matches only $ne and $nin.
//     ParseFilter reads its JSON form.
//   - Metadata and Memory (metadata.go): the one schema of every memory —
//     created_at and last_accessed_at (unix ms), access_count, priority
//     (permanent|high|session|normal|temporary|auto), links, source
//     (user|model|tool|web|skill), trusted, session_id, type.
//   - Embedder (embedder.go): rag/hashembed (offline, lexical — the
//     default), rag/ollamaembed and rag/geminiembed (semantic). CheckDimension
//     compares an embedder with a store at start-up. An embedder that is a
//     ThresholdEmbedder gives its own similarity threshold.
//   - History (history.go): the last N messages of a session (10 by
//     default) with a TTL, on Redis (rag/redis) or in memory.
//   - Retriever (retriever.go): retrieval with MMR, relevance scoring and a
//     token budget.
//
// # Retrieval
//
// Retrieve embeds the query, asks the store for min(3·top_k, 50)
// candidates — and, when the store is a KeywordSearcher, as many records
// sharing words with the query, merged in — picks top_k by maximal
// marginal relevance (λ = 0.5, so near-duplicates are not both chosen;
// a keyword candidate competes with the higher of its similarity and its
// keyword score), drops those below both the similarity threshold and the
// keyword threshold (after MMR), scores the rest by relevance
//
//	0.40·similarity + 0.25·keyword (Jaccard) + 0.20·metadata + 0.15·recency (90-day half-life)
//
// and assembles them, most relevant first, into the token budget (2,500 by
// default = 4,000 − 1,000 for the answer − 500 for the system prompt). The
// similarity threshold depends on the embedder, because their scales
// differ: 0.35 for rag/hashembed (calibrated on rag/testdata/recall.json:
// with keyword search every paraphrased question finds its note), the
// spec's 0.7 for rag/ollamaembed, rag/geminiembed and any embedder that
// does not give one. The keyword threshold is 0.4 (the share of the
// query's IDF-weighted words a memory holds). The
// memory that overflows is truncated on a sentence or word boundary when
// more than 100 tokens remain. Included memories get access_count + 1 and a
// new last_accessed_at, which the pruner's score uses.
//
// When the store is at its ceiling or the vector search fails, Retrieve
// walks the spec's fallback chain: an aggressive prune (through a
// CapacityPruner such as prune.Pruner) and a new search, then the session's
// recent history, then a keyword search (the store's word index when it
// is a KeywordSearcher, else substrings ignoring case), then an empty
// context with Warning set. It never fails the caller for a backend problem.
//
// # Trust
//
// Only memories whose metadata says trusted=true are rendered as context
// the model may act on. Everything else (web pages, tool output, history in
// the fallback) is rendered by Render as quoted data inside
// <untrusted-memory> elements, after a notice that instructions inside must
// not be followed. Decide trust when storing: set Memory.Trusted only for
// what a person or Talos itself wrote.
package rag
