// Package storecheck holds the checks every rag.Store adapter applies the
// same way: validation of records and query embeddings before they reach a
// backend, metadata filter and document matching for adapters that filter
// records themselves, and the case-insensitive document pattern. The
// adapters under rag share it so that each backend accepts and refuses
// exactly the same input; it is not part of the public API.
package storecheck
