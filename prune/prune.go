package prune

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// Capacity defaults.
const (
	// DefaultCeiling is the vector ceiling (CHROMADB_MAX_VECTORS).
	DefaultCeiling = 100_000
	// DefaultTriggerRatio: prune when the count is above 90% of the ceiling.
	DefaultTriggerRatio = 0.90
	// DefaultTargetRatio: prune down to 80% of the ceiling (hysteresis).
	DefaultTargetRatio = 0.80
	// AggressiveTriggerRatio and AggressiveTargetRatio are the emergency
	// parameters of the capacity fallback: trigger above 80%, target 80%.
	AggressiveTriggerRatio = 0.80
	AggressiveTargetRatio  = 0.80
	// DefaultBatchSize is the number of ids per delete (≤ 500).
	DefaultBatchSize = 500
	// MaxBatchSize caps BatchSize (Chroma accepts at most 5,461 ids per
	// call).
	MaxBatchSize = 500
	// DefaultRetries is how often a failed batch is retried.
	DefaultRetries = 3
	// DefaultBackoff is the first retry delay; it doubles (1 s, 2 s, 4 s).
	DefaultBackoff = time.Second
	// DefaultPageSize is the page used to read every record's metadata.
	DefaultPageSize = 1000
	// DefaultTemporaryMaxAge is the compaction age of temporary memories
	// (temporary memories older than 30 days are compacted).
	DefaultTemporaryMaxAge = 30 * 24 * time.Hour
)

// Config configures New. Zero fields take the defaults.
type Config struct {
	Ceiling      int
	TriggerRatio float64 // in (0,1]
	TargetRatio  float64 // in (0, TriggerRatio]
	BatchSize    int     // 1..500
	Retries      int     // ≥ 0; 0 means DefaultRetries, use NoRetries for none
	Backoff      time.Duration
	PageSize     int
	// ArchivePath is the JSON-lines file every pruned record is appended
	// to (and fsynced) before it is deleted. Required to delete anything.
	ArchivePath string
	// Logger; nil discards.
	Logger *slog.Logger
}

// NoRetries disables retries when set as Config.Retries.
const NoRetries = -1

// Pruner keeps a vector store under its ceiling. It implements
// rag.CapacityPruner. One prune runs at a time.
type Pruner struct {
	cfg   Config
	store rag.Store
	log   *slog.Logger
	mu    sync.Mutex
}

// New validates cfg and returns a pruner on store.
func New(cfg Config, store rag.Store) (*Pruner, error) {
	const op = "prune.New"
	if store == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "the store is nil")
	}
	if cfg.Ceiling == 0 {
		cfg.Ceiling = DefaultCeiling
	}
	if cfg.TriggerRatio == 0 {
		cfg.TriggerRatio = DefaultTriggerRatio
	}
	if cfg.TargetRatio == 0 {
		cfg.TargetRatio = DefaultTargetRatio
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	switch {
	case cfg.Retries == 0:
		cfg.Retries = DefaultRetries
	case cfg.Retries == NoRetries:
		cfg.Retries = 0
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBackoff
	}
	if cfg.PageSize == 0 {
		cfg.PageSize = DefaultPageSize
	}
	if cfg.Ceiling < 1 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "ceiling %d must be positive", cfg.Ceiling)
	}
	if err := checkRatios(op, cfg.TriggerRatio, cfg.TargetRatio); err != nil {
		return nil, err
	}
	if cfg.BatchSize < 1 || cfg.BatchSize > MaxBatchSize {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "batch size %d must be between 1 and %d", cfg.BatchSize, MaxBatchSize)
	}
	if cfg.Retries < 0 || cfg.Retries > 10 || cfg.Backoff < 0 || cfg.PageSize < 1 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "retries %d (0..10), backoff %s and page size %d are out of range", cfg.Retries, cfg.Backoff, cfg.PageSize)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Pruner{cfg: cfg, store: store, log: log}, nil
}

func checkRatios(op string, trigger, target float64) error {
	if !(trigger > 0 && trigger <= 1) || !(target > 0 && target <= trigger) {
		return talos.Errorf(talos.CodeConfigInvalid, op, "trigger ratio %v must be in (0,1] and target ratio %v in (0, trigger]", trigger, target)
	}
	return nil
}

// Params are the trigger and target of one prune, as ratios of the ceiling.
type Params struct {
	TriggerRatio float64
	TargetRatio  float64
	Reason       string // recorded in the archive
}

// Candidate is one record chosen for deletion.
type Candidate struct {
	ID       string
	Score    float64
	Priority rag.Priority
	AgeDays  float64 // -1 when created_at is unknown
}

// Plan is what a prune would do (a dry run returns only the plan).
type Plan struct {
	Count     int // records in the store
	Trigger   int // prune when Count > Trigger
	Target    int // prune down to Target
	Triggered bool
	Reason    string
	ToDelete  int // Count − Target when triggered
	Protected int // records that may not be deleted (permanent or too young)
	// Candidates are exactly the records that would go, lowest score
	// first: min(ToDelete, deletable) of them.
	Candidates []Candidate
	// Insufficient is true when the guarantees leave fewer deletable
	// records than ToDelete; the prune then deletes what it may and never
	// touches a protected record.
	Insufficient bool
	ScoredIn     time.Duration
}

// Report is the outcome of a prune.
type Report struct {
	Plan
	DryRun  bool
	Deleted int
	// SkippedProtected counts candidates that had become protected (tagged
	// permanent, say) between planning and their batch: they are re-checked
	// on the records read just before archiving, and neither archived nor
	// deleted. The prune then falls short of Target by that many.
	SkippedProtected int
	FailedBatches    int      // batches that failed on their first attempt
	Failed           []string // ids still present after every retry
	Archive          string
	Run              string
	Duration         time.Duration
}

// Plan computes what Prune would do, deleting nothing.
func (p *Pruner) Plan(ctx context.Context) (*Plan, error) {
	return p.plan(ctx, Params{TriggerRatio: p.cfg.TriggerRatio, TargetRatio: p.cfg.TargetRatio}, time.Now())
}

// Prune deletes the lowest-scoring deletable records when the store is above
// the trigger (90% of the ceiling by default), down to the target (80%).
func (p *Pruner) Prune(ctx context.Context) (*Report, error) {
	return p.Run(ctx, Params{TriggerRatio: p.cfg.TriggerRatio, TargetRatio: p.cfg.TargetRatio, Reason: "prune"}, false)
}

// PruneAggressive prunes with the emergency parameters (trigger and target
// 80%) and returns how many records went. It implements rag.CapacityPruner.
func (p *Pruner) PruneAggressive(ctx context.Context) (int, error) {
	rep, err := p.Run(ctx, Params{TriggerRatio: AggressiveTriggerRatio, TargetRatio: AggressiveTargetRatio, Reason: "aggressive"}, false)
	if rep == nil {
		return 0, err
	}
	return rep.Deleted, err
}

var _ rag.CapacityPruner = (*Pruner)(nil)

func (p *Pruner) plan(ctx context.Context, params Params, now time.Time) (*Plan, error) {
	const op = "prune.Plan"
	if err := checkRatios(op, params.TriggerRatio, params.TargetRatio); err != nil {
		return nil, err
	}
	count, err := p.store.Count(ctx)
	if err != nil {
		return nil, talos.E(talos.CodePruneFailed, op, "cannot count the vector store", err)
	}
	pl := &Plan{
		Count:   count,
		Trigger: int(float64(p.cfg.Ceiling) * params.TriggerRatio),
		Target:  int(float64(p.cfg.Ceiling) * params.TargetRatio),
	}
	if count <= pl.Trigger {
		pl.Reason = fmt.Sprintf("Count %d below threshold %d", count, pl.Trigger)
		return pl, nil
	}
	pl.Triggered = true
	pl.ToDelete = count - pl.Target
	pl.Reason = fmt.Sprintf("Count %d above threshold %d: pruning %d to reach %d", count, pl.Trigger, pl.ToDelete, pl.Target)
	start := time.Now()
	var cands []Candidate
	for off := 0; ; off += p.cfg.PageSize {
		page, err := p.store.List(ctx, rag.ListOptions{Offset: off, Limit: p.cfg.PageSize})
		if err != nil {
			return nil, talos.E(talos.CodePruneFailed, op, "cannot read the store's metadata", err)
		}
		for _, r := range page {
			m := r.Metadata.Memory()
			if protectedMemory(m, now) {
				pl.Protected++
				continue
			}
			age := -1.0
			if !m.CreatedAt.IsZero() {
				age = now.Sub(m.CreatedAt).Hours() / 24
			}
			cands = append(cands, Candidate{ID: r.ID, Score: scoreMemory(m, now), Priority: m.Priority, AgeDays: age})
		}
		if len(page) < p.cfg.PageSize {
			break
		}
	}
	sort.Slice(cands, func(i, j int) bool {
		if cands[i].Score != cands[j].Score {
			return cands[i].Score < cands[j].Score
		}
		return cands[i].ID < cands[j].ID
	})
	if len(cands) < pl.ToDelete {
		pl.Insufficient = true
		p.log.WarnContext(ctx, "PRUNE_INSUFFICIENT_DELETABLE", "requested", pl.ToDelete, "available", len(cands), "protected", pl.Protected)
	} else {
		cands = cands[:pl.ToDelete]
	}
	pl.Candidates = cands
	pl.ScoredIn = time.Since(start)
	return pl, nil
}

// Run prunes with params; with dryRun it only plans. Every record is
// appended to the archive (and the file fsynced) before its batch is
// deleted; a batch counts as deleted only when a read of its ids comes back
// empty, and a failed batch is retried after 1 s, 2 s, 4 s. The error is a
// T109 when some batch still failed; the report says which ids.
func (p *Pruner) Run(ctx context.Context, params Params, dryRun bool) (*Report, error) {
	const op = "prune.Run"
	p.mu.Lock()
	defer p.mu.Unlock()
	start := time.Now()
	pl, err := p.plan(ctx, params, start)
	if err != nil {
		return nil, err
	}
	rep := &Report{Plan: *pl, DryRun: dryRun, Archive: p.cfg.ArchivePath, Run: rag.NewID()}
	if dryRun || !pl.Triggered || len(pl.Candidates) == 0 {
		rep.Duration = time.Since(start)
		return rep, nil
	}
	if p.cfg.ArchivePath == "" {
		return rep, talos.Errorf(talos.CodePruneFailed, op, "no archive path is configured; refusing to delete %d memories that could not be restored", len(pl.Candidates))
	}
	p.log.InfoContext(ctx, "PRUNE_TRIGGERED", "current", pl.Count, "target", pl.Target, "delete", len(pl.Candidates), "run", rep.Run)
	scores := make(map[string]float64, len(pl.Candidates))
	for _, c := range pl.Candidates {
		scores[c.ID] = c.Score
	}
	for b := 0; b < len(pl.Candidates); b += p.cfg.BatchSize {
		part := pl.Candidates[b:min(b+p.cfg.BatchSize, len(pl.Candidates))]
		ids := make([]string, len(part))
		for i, c := range part {
			ids[i] = c.ID
		}
		br, err := p.deleteBatch(ctx, ids, scores, rep.Run, params.Reason, start)
		rep.Deleted += br.deleted
		rep.Failed = append(rep.Failed, br.failed...)
		rep.SkippedProtected += br.protected
		if br.firstFail {
			rep.FailedBatches++
		}
		if err != nil {
			rep.Duration = time.Since(start)
			return rep, err
		}
	}
	rep.Duration = time.Since(start)
	if len(rep.Failed) > 0 {
		return rep, talos.Errorf(talos.CodePruneFailed, op, "%d of %d memories could not be deleted after %d retries; they are archived and still in the store", len(rep.Failed), len(pl.Candidates), p.cfg.Retries)
	}
	return rep, nil
}

// batchResult is the outcome of one deleteBatch.
type batchResult struct {
	deleted   int      // records deleted and verified gone
	failed    []string // ids still present after every retry
	protected int      // records skipped because they are now protected
	firstFail bool     // the first delete attempt failed
}

// deleteBatch archives then deletes one batch with verify and retry. The
// records are read again first and their protection re-checked on what was
// read: a record that became protected since planning (re-tagged permanent,
// say) is neither archived nor deleted, and one that is gone is left alone.
// Only the records read and still deletable are archived and deleted. The
// error is fatal (archive failure or cancellation).
func (p *Pruner) deleteBatch(ctx context.Context, ids []string, scores map[string]float64, run, reason string, now time.Time) (batchResult, error) {
	const op = "prune.deleteBatch"
	var res batchResult
	recs, err := p.store.Get(ctx, ids)
	if err != nil {
		return res, talos.E(talos.CodePruneFailed, op, "cannot read the records to archive", err)
	}
	entries := make([]Entry, 0, len(recs))
	remaining := make([]string, 0, len(recs))
	for _, r := range recs {
		if protectedMemory(r.Metadata.Memory(), now) {
			res.protected++
			p.log.WarnContext(ctx, "PRUNE_SKIPPED_PROTECTED", "id", r.ID, "priority", r.Metadata.Memory().Priority)
			continue
		}
		entries = append(entries, Entry{V: ArchiveVersion, Run: run, PrunedAt: now.UnixMilli(), Reason: reason, Score: scores[r.ID],
			ID: r.ID, Document: r.Document, Embedding: r.Embedding, Metadata: ArchiveMetadata(r.Metadata)})
		remaining = append(remaining, r.ID)
	}
	if len(remaining) == 0 {
		return res, nil
	}
	cut, err := appendArchive(p.cfg.ArchivePath, entries)
	if cut > 0 {
		p.log.WarnContext(ctx, "PRUNE_ARCHIVE_TORN_TAIL", "archive", p.cfg.ArchivePath, "bytes", cut,
			"note", "a torn last line (an append cut short by a crash; its records were not deleted) was removed before appending")
	}
	if err != nil {
		return res, talos.E(talos.CodePruneFailed, op, "cannot append to the archive "+p.cfg.ArchivePath+"; nothing was deleted", err)
	}
	total := len(remaining)
	for attempt := 0; ; attempt++ {
		err := p.store.Delete(ctx, remaining)
		if err == nil {
			left, gerr := p.store.Get(ctx, remaining)
			if gerr != nil {
				err = gerr
			} else if len(left) > 0 {
				err = fmt.Errorf("PRUNE_VERIFY_FAILED: %d of %d ids still present", len(left), len(remaining))
				still := make([]string, len(left))
				for i, r := range left {
					still[i] = r.ID
				}
				remaining = still
			} else {
				res.deleted, res.failed = total, nil
				return res, nil
			}
		}
		if attempt == 0 {
			res.firstFail = true
		}
		res.deleted, res.failed = total-len(remaining), remaining
		if attempt >= p.cfg.Retries {
			p.log.ErrorContext(ctx, "PRUNE_BATCH_FAILED", "ids", len(remaining), "attempts", attempt+1, "err", err)
			return res, nil
		}
		delay := p.cfg.Backoff << attempt
		p.log.WarnContext(ctx, "PRUNE_BATCH_RETRY", "attempt", attempt+1, "delay", delay, "err", err)
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(delay):
		}
	}
}

// DeleteExpiredTemporary removes temporary memories older than maxAge
// (default 30 days), archiving them
// first like a prune.
func (p *Pruner) DeleteExpiredTemporary(ctx context.Context, maxAge time.Duration) (int, error) {
	const op = "prune.DeleteExpiredTemporary"
	if maxAge == 0 {
		maxAge = DefaultTemporaryMaxAge
	}
	if p.cfg.ArchivePath == "" {
		return 0, talos.Errorf(talos.CodePruneFailed, op, "no archive path is configured")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	f := rag.And(rag.Eq(rag.KeyPriority, string(rag.PriorityTemporary)), rag.Lt(rag.KeyCreatedAt, float64(now.Add(-maxAge).UnixMilli())))
	var ids []string
	for off := 0; ; off += p.cfg.PageSize {
		page, err := p.store.List(ctx, rag.ListOptions{Where: &f, Offset: off, Limit: p.cfg.PageSize})
		if err != nil {
			return 0, talos.E(talos.CodePruneFailed, op, "cannot list temporary memories", err)
		}
		for _, r := range page {
			ids = append(ids, r.ID)
		}
		if len(page) < p.cfg.PageSize {
			break
		}
	}
	run := rag.NewID()
	deleted := 0
	var failed []string
	for b := 0; b < len(ids); b += p.cfg.BatchSize {
		part := ids[b:min(b+p.cfg.BatchSize, len(ids))]
		br, err := p.deleteBatch(ctx, part, nil, run, "temporary-cleanup", now)
		deleted += br.deleted
		failed = append(failed, br.failed...)
		if err != nil {
			return deleted, err
		}
	}
	if len(failed) > 0 {
		return deleted, talos.Errorf(talos.CodePruneFailed, op, "%d temporary memories could not be deleted", len(failed))
	}
	return deleted, nil
}

// RestoreOptions select what Restore puts back.
type RestoreOptions struct {
	// IDs restricts the restore to these ids; empty restores everything.
	IDs []string
	// Run restricts the restore to one prune run; "" means every run.
	Run string
	// Overwrite replaces a record that exists again under the same id;
	// by default such ids are skipped.
	Overwrite bool
	// DryRun counts without writing.
	DryRun bool
}

// RestoreReport says what Restore did.
type RestoreReport struct {
	Restored int
	Skipped  int // present in the store and not overwritten
	Entries  int // matching archive entries read (the last per id wins)
	// TornTail is true when the archive's last line was torn (an append
	// cut short by a crash) and skipped; its records were never deleted.
	TornTail bool
	// NoArchive is true when the archive file does not exist yet: nothing
	// has been pruned, so there is nothing to restore (not an error).
	NoArchive bool
}

// Restore puts archived records back into the store: ids, documents,
// embeddings and metadata as they were when pruned. Before the first prune
// the archive does not exist and Restore reports NoArchive with nothing
// restored.
func (p *Pruner) Restore(ctx context.Context, opts RestoreOptions) (*RestoreReport, error) {
	const op = "prune.Restore"
	if p.cfg.ArchivePath == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "no archive path is configured")
	}
	f, err := os.Open(p.cfg.ArchivePath)
	if errors.Is(err, fs.ErrNotExist) {
		return &RestoreReport{NoArchive: true}, nil
	}
	if err != nil {
		return nil, talos.E(talos.CodePruneFailed, op, "cannot open the archive "+p.cfg.ArchivePath, err)
	}
	defer f.Close()
	want := map[string]bool{}
	for _, id := range opts.IDs {
		want[id] = true
	}
	latest := map[string]Entry{}
	var order []string
	rep := &RestoreReport{}
	rep.TornTail, err = readArchive(f, func(e Entry) error {
		if len(want) > 0 && !want[e.ID] {
			return nil
		}
		if opts.Run != "" && e.Run != opts.Run {
			return nil
		}
		rep.Entries++
		if _, seen := latest[e.ID]; !seen {
			order = append(order, e.ID)
		}
		latest[e.ID] = e
		return nil
	})
	if err != nil {
		return nil, talos.E(talos.CodePruneFailed, op, "the archive "+p.cfg.ArchivePath+" is damaged; nothing was restored", err)
	}
	if rep.TornTail {
		p.log.WarnContext(ctx, "PRUNE_ARCHIVE_TORN_TAIL", "archive", p.cfg.ArchivePath,
			"note", "the last line is torn (an append cut short by a crash; its records were not deleted) and was skipped")
	}
	dim := p.store.Dimension()
	for start := 0; start < len(order); start += p.cfg.BatchSize {
		part := order[start:min(start+p.cfg.BatchSize, len(order))]
		present := map[string]bool{}
		if !opts.Overwrite {
			have, err := p.store.Get(ctx, part)
			if err != nil {
				return rep, talos.E(talos.CodePruneFailed, op, "cannot check which memories exist", err)
			}
			for _, r := range have {
				present[r.ID] = true
			}
		}
		var recs []rag.Record
		for _, id := range part {
			if present[id] {
				rep.Skipped++
				continue
			}
			e := latest[id]
			if len(e.Embedding) != dim {
				return rep, talos.Errorf(talos.CodeConfigInvalid, op, "archived memory %s has %d-dimensional embedding, the store holds %d; restore into a store of the original dimension", id, len(e.Embedding), dim)
			}
			recs = append(recs, e.Record())
		}
		if !opts.DryRun && len(recs) > 0 {
			if err := p.store.Upsert(ctx, recs); err != nil {
				return rep, talos.E(talos.CodePruneFailed, op, "restoring memories failed", err)
			}
		}
		rep.Restored += len(recs)
	}
	return rep, nil
}
