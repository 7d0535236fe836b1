package backup

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
)

// VectorExport is the archive path of the export of a memory store that
// lives outside the home (a Chroma collection). Its lines are the prune
// archive's (prune.Entry: id, document, metadata with typed numbers,
// embedding), so `talos memory restore --archive` can also import it.
const VectorExport = "data/chroma-export.jsonl"

// vectorPage is how many records one List or Upsert call moves.
const vectorPage = 500

// ExportVectors writes every record of store, with its embedding, to w as
// VectorExport lines, and returns how many it wrote. Records written to
// the store while it pages may be missed: stop the daemon for a backup
// that must hold the last minute's memories.
func ExportVectors(ctx context.Context, store rag.Store, w io.Writer, at time.Time) (int, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	run := "backup-" + at.UTC().Format(archiveTime)
	seen := map[string]bool{}
	for offset := 0; ; offset += vectorPage {
		recs, err := store.List(ctx, rag.ListOptions{Offset: offset, Limit: vectorPage, Embeddings: true})
		if err != nil {
			return len(seen), err
		}
		for _, r := range recs {
			if seen[r.ID] {
				continue // a page moved under a concurrent write
			}
			seen[r.ID] = true
			line, err := json.Marshal(prune.Entry{V: prune.ArchiveVersion, Run: run, PrunedAt: at.UnixMilli(), Reason: "backup",
				ID: r.ID, Document: r.Document, Embedding: r.Embedding, Metadata: prune.ArchiveMetadata(r.Metadata)})
			if err != nil {
				return len(seen), fmt.Errorf("memory %s: %w", redact.Value(r.ID), err)
			}
			bw.Write(line)
			if err := bw.WriteByte('\n'); err != nil {
				return len(seen), err
			}
		}
		if len(recs) < vectorPage {
			break
		}
	}
	return len(seen), bw.Flush()
}

// ImportVectors upserts every record of a VectorExport read from r into
// store, in batches, replacing records with the same id, and returns how
// many it upserted. A line that does not parse, or an embedding of another
// dimension than the store's, stops the import with an error naming the
// line or the memory; the batches before it are imported.
func ImportVectors(ctx context.Context, store rag.Store, r io.Reader) (int, error) {
	const op = "backup.ImportVectors"
	dim := store.Dimension()
	var batch []rag.Record
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := store.Upsert(ctx, batch); err != nil {
			return talos.E(talos.CodeChroma, op, fmt.Sprintf("cannot import memories (%d imported before this batch)", n), err)
		}
		n += len(batch)
		batch = batch[:0]
		return nil
	}
	err := prune.ReadArchive(r, func(e prune.Entry) error {
		if len(e.Embedding) != dim {
			return talos.Errorf(talos.CodeConfigInvalid, op, "memory %s has a %d-dimensional embedding, the collection holds %d; import into a collection of the original dimension",
				redact.Value(e.ID), len(e.Embedding), dim)
		}
		batch = append(batch, e.Record())
		if len(batch) == vectorPage {
			return flush()
		}
		return ctx.Err()
	})
	if err == nil {
		err = flush()
	}
	if err != nil && talos.CodeOf(err) == "" {
		err = talos.E(talos.CodeConfigInvalid, op, VectorExport+" is not a memory export", err)
	}
	return n, err
}
