package prune

import (
	"context"
	"sort"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// DefaultDuplicateSimilarity is how similar (cosine) two memories must be
// for Consolidate to take the newer for a repeat of the older.
const DefaultDuplicateSimilarity = 0.97

// consolidateBatch is how many merges Consolidate writes at once.
const consolidateBatch = 512

// ConsolidateReport says what Consolidate did.
type ConsolidateReport struct {
	Checked int    // memories looked at (those created since the cut-off)
	Merged  int    // near-duplicates archived and deleted
	Run     string // the archive run, for Restore
}

// Consolidate merges near-duplicate memories: every memory created since
// `since` is compared with its nearest neighbours, and one whose text says
// the same as another's (cosine similarity at least minSimilarity, 0 means
// DefaultDuplicateSimilarity; same source, trust and session) is folded
// into the one kept — the permanent one, else the higher-scoring one —
// whose access count takes the other's. The merged record is archived
// first (reason "merged into ID", restorable with Restore and the run) and
// then deleted. A permanent memory is never merged away, and memories of
// different sources or trust never merge, so an untrusted text cannot
// replace a trusted one.
func (p *Pruner) Consolidate(ctx context.Context, since time.Time, minSimilarity float64) (*ConsolidateReport, error) {
	const op = "prune.Consolidate"
	if minSimilarity == 0 {
		minSimilarity = DefaultDuplicateSimilarity
	}
	if p.cfg.ArchivePath == "" {
		return nil, talos.Errorf(talos.CodePruneFailed, op, "no archive path is configured")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	rep := &ConsolidateReport{Run: rag.NewID()}
	f := rag.Gte(rag.KeyCreatedAt, float64(since.UnixMilli()))
	var fresh []rag.Record
	for off := 0; ; off += p.cfg.PageSize {
		page, err := p.store.List(ctx, rag.ListOptions{Where: &f, Offset: off, Limit: p.cfg.PageSize, Embeddings: true})
		if err != nil {
			return rep, talos.E(talos.CodePruneFailed, op, "cannot list the new memories", err)
		}
		fresh = append(fresh, page...)
		if len(page) < p.cfg.PageSize {
			break
		}
	}
	sort.Slice(fresh, func(i, j int) bool { return fresh[i].ID < fresh[j].ID })
	// Decisions are made one by one; their writes go in batches of
	// consolidateBatch: the kept memories' access counts, then the archive
	// entries, then the deletes — three commits a batch instead of three a
	// merge. counts holds each touched memory's access count including
	// what it has absorbed so far, so a memory merged twice passes on all.
	gone := map[string]bool{}
	counts := map[string]int64{} // for the whole run: a record read earlier may be stale
	dirty := map[string]bool{}   // counts changed since the last flush
	count := func(r rag.Record) int64 {
		if c, ok := counts[r.ID]; ok {
			return c
		}
		return r.Metadata.Memory().AccessCount
	}
	var entries []Entry
	var drops []string
	flush := func() error {
		if len(drops) == 0 {
			return nil
		}
		upd := map[string]rag.Metadata{}
		for id := range dirty {
			if !gone[id] {
				upd[id] = rag.Metadata{rag.KeyAccessCount: counts[id]}
			}
		}
		if len(upd) > 0 {
			if err := p.store.UpdateMetadata(ctx, upd); err != nil {
				return talos.E(talos.CodePruneFailed, op, "cannot update the access counts of the memories kept", err)
			}
		}
		if _, err := appendArchive(p.cfg.ArchivePath, entries); err != nil {
			return talos.E(talos.CodePruneFailed, op, "cannot append to the archive "+p.cfg.ArchivePath+"; nothing was deleted", err)
		}
		if err := p.store.Delete(ctx, drops); err != nil {
			return talos.E(talos.CodePruneFailed, op, "cannot delete the merged memories (they are archived)", err)
		}
		rep.Merged += len(drops)
		clear(dirty)
		entries, drops = entries[:0], drops[:0]
		return nil
	}
	for _, r := range fresh {
		if gone[r.ID] {
			continue
		}
		rep.Checked++
		m := r.Metadata.Memory()
		near, err := p.store.Query(ctx, r.Embedding, 6, nil)
		if err != nil {
			return rep, talos.E(talos.CodePruneFailed, op, "cannot search the neighbours of "+r.ID, err)
		}
		for _, n := range near {
			if n.ID == r.ID || gone[n.ID] || n.Similarity < minSimilarity {
				continue
			}
			o := n.Metadata.Memory()
			if o.Source != m.Source || o.Trusted != m.Trusted || o.SessionID != m.SessionID {
				continue
			}
			keep, drop := n.Record, r
			switch {
			case m.Priority == rag.PriorityPermanent && o.Priority == rag.PriorityPermanent:
				continue
			case m.Priority == rag.PriorityPermanent:
				keep, drop = r, n.Record
			case o.Priority == rag.PriorityPermanent:
			case scoreMemory(m, now) > scoreMemory(o, now):
				keep, drop = r, n.Record
			}
			dropCount := count(drop)
			counts[keep.ID] = count(keep) + dropCount
			dirty[keep.ID] = true
			md := rag.Metadata{}
			for k, v := range drop.Metadata {
				md[k] = v
			}
			md[rag.KeyAccessCount] = dropCount
			entries = append(entries, Entry{V: ArchiveVersion, Run: rep.Run, PrunedAt: now.UnixMilli(), Reason: "merged into " + keep.ID,
				ID: drop.ID, Document: drop.Document, Embedding: drop.Embedding, Metadata: ArchiveMetadata(md)})
			drops = append(drops, drop.ID)
			gone[drop.ID] = true
			if len(drops) >= consolidateBatch {
				if err := flush(); err != nil {
					return rep, err
				}
			}
			if drop.ID == r.ID {
				break
			}
		}
	}
	if err := flush(); err != nil {
		return rep, err
	}
	return rep, nil
}
