// Package chromem is the embedded rag.Store: chromem-go, persistent on disk,
// no server. It is the default long-term memory of the Talos daemon.
//
// chromem-go filters only by string equality, so this adapter stores every
// metadata value with a type prefix ("s:", "i:", "f:", "b:") to keep its type
// across a restart, pushes string and bool equality down to chromem-go, and
// evaluates every other condition ($ne, ranges, $in, $or …) itself. The
// embedding dimension is recorded in a small file beside the collections
// (talos-collections.json) and checked at Open. chromem-go normalises
// vectors on add; the adapter hands it rag.Normalize's unit vector, which
// chromem-go keeps as is, so it stores what the other adapters store.
//
// chromem-go keeps every vector in memory and writes one file per record,
// so it suits up to a few hundred thousand memories (see docs/benchmarks.md).
package chromem
