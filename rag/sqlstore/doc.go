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
// Several processes may share one store (the daemon and `talos memory`):
// every write appends the ids it changed to a change log in its
// transaction, and each process's reads apply the changes others committed,
// looking at the log at most every Config.SyncInterval (100 ms).
//
// Keyword search (KeywordSearch) finds records sharing words with a query,
// whatever the embedder thinks of them, from an in-memory inverted index of
// lower-cased word tokens. The Store is a rag.KeywordSearcher, so a
// rag.Retriever on it merges these hits with the vector candidates.
//
// # Why this design
//
// It replaced chromem-go as the embedded default (chromem stays selectable
// with TALOS_MEMORY_STORE=chromem). chromem writes one file per record,
// create-then-encode: a kill -9 left empty record files that stopped every
// later command. Here a commit is the unit of durability. Measured at
// 100,000 memories of 384 dimensions on a shared 2-core machine
// (docs/benchmarks.md): a full Retrieve p50 6.5–9.1 ms / p99 33–51 ms at a
// load of 4, 12.8–26.6 ms p50 at a load of 10–16, against chromem's 206 ms
// and a Chroma server's 77 ms in the same loaded run. An approximate index (HNSW, e.g. github.com/coder/hnsw) was
// considered and not built: for the default lexical embedder the exact scan
// is already within the target, exact (recall 1, no parameters), and needs
// no rebuild at start; with a dense semantic embedder the scan costs more
// (28–43 ms p50 at 100,000 under load), which is where an index would pay
// off.
// The price is memory: the whole collection is held in RAM (250–280 MB
// of Go heap for 100,000 records) and loaded at Open (2.5 s at a load of 4,
// up to 15 s on a machine loaded 10–16).
package sqlstore
