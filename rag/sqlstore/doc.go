// Package sqlstore is a rag.Store whose records live in a SQL database
// (package sqldb: the embedded SQLite file by default, or PostgreSQL) and
// whose vectors are searched in memory.
//
// Durability comes from the database: an Upsert, UpdateMetadata or Delete
// returns only after its transaction committed (SQLite in WAL mode with
// synchronous=FULL), so a process killed at any instant loses nothing that
// was acknowledged, and a half-written record never exists. Open loads every
// record into an in-memory index; a row that cannot be decoded (a damaged
// embedding or metadata, written by hand or by a broken disk) is skipped,
// named in the log and counted by Damaged, never a reason the store stops.
//
// Query is an exact cosine search, the same answer as a brute-force one
// with no index to tune or rebuild: the unit vectors are kept component by
// component, so a query touches only its own non-zero components (a lexical
// embedder's query has about a tenth of them), split over one goroutine per
// CPU.
//
// Keyword search (KeywordSearch) finds records sharing words with a query,
// whatever the embedder thinks of them, from an in-memory inverted index of
// lower-cased word tokens. The Store is a rag.KeywordSearcher, so a
// rag.Retriever on it merges these hits with the vector candidates.
package sqlstore
