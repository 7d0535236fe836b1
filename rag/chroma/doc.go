// Package chroma is the rag.Store on a Chroma server (chroma-go v2 API).
//
// The adapter always supplies embeddings itself: the collection is given an
// embedding function that refuses to embed, so chroma-go never downloads a
// default model. Collections are created with the cosine space (the server
// reports hnsw space "cosine" in the collection's configuration), and Open
// refuses a collection made with another space; similarity is 1 − the
// cosine distance Chroma returns. Embeddings are sent L2-normalised, like
// every rag.Store keeps them. The embedding dimension is stored in the
// collection metadata (talos_dim) and checked at Open, together with the
// dimension Chroma reports.
//
// Filters are sent to the server in Chroma's where syntax (rag.Filter marshals
// to it). Writes are cut into batches (1,000 records per upsert, 500 ids per
// delete) far below Chroma's per-call cap of 5,461.
package chroma
