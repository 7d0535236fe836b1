// Package prune keeps a vector store (a rag.Store) under its ceiling by
// deleting the memories least worth keeping, safely.
//
// # Score
//
// Each memory gets the spec's retention score:
//
//	0.30·frequency + 0.25·age + 0.35·priority + 0.10·recency
//
// where frequency = min(access_count, 1000)/1000, age = exp(−ln2·age/30 d),
// priority is 1.0 permanent, 0.9 high, 0.5 session/auto/normal/unknown, 0.1
// temporary, and recency = 1/(1 + ln(1 + hours since last access)).
//
// # Guarantees
//
// A permanent memory is never deleted. Other priorities are kept at least
// high 365 d, session 30 d, normal 30 d, auto and unknown 7 d, temporary 1 d.
// When these guarantees leave too few candidates, the prune deletes what it
// may and reports Insufficient: the ceiling never beats a guarantee.
// Protection is checked twice: when the plan reads the metadata, and again on
// the records each batch reads just before archiving them, so a memory tagged
// permanent while a prune runs is skipped (Report.SkippedProtected) rather
// than deleted.
//
// # Prune
//
// With hysteresis: nothing happens until the count is above 90%
// of the ceiling (90,000 of 100,000); then exactly count − 80% of the ceiling
// memories go, lowest score first. Deletes are batched at ≤ 500 ids; a batch
// counts as deleted only when reading its ids back returns nothing, and a
// failed batch is retried after 1 s, 2 s and 4 s. Before a batch is deleted,
// every record in it (id, document, embedding, metadata) is appended to a
// JSON-lines archive and the file is fsynced, so Restore can put any pruned
// memory back; when the archive cannot be written, the batch is not
// deleted. A last line torn by a crash mid-append is skipped by Restore
// (RestoreReport.TornTail) and cut off by the next append: its records were
// never deleted. Plan (or Run with dryRun) reports what would go without
// deleting anything.
//
// Pruner.PruneAggressive is the emergency prune of the retrieval fallback
// chain (trigger and target 80%); Pruner satisfies rag.CapacityPruner.
// DeleteExpiredTemporary is the nightly compaction of temporary memories
// older than 30 days.
package prune
