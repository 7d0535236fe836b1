package sqlstore

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/internal/storecheck"
	"github.com/talos-ironclad/talos/sqldb"
)

// Component is the name the schema is versioned under in talos_schema.
const Component = "rag"

// DefaultCollection is the collection Open uses when Config.Collection is
// empty: the spec's "talos_memory".
const DefaultCollection = "talos_memory"

// DefaultDimension is the embedding dimension when Config.Dimension is 0:
// that of the default embedder, rag/hashembed.
const DefaultDimension = 384

// Migrations are the schema versions of the memory store, for both dialects.
var Migrations = []sqldb.Migration{
	{Version: 1, Name: "memory records",
		SQLite: `CREATE TABLE rag_collections (name TEXT PRIMARY KEY, dimension INTEGER NOT NULL CHECK (dimension > 0));
CREATE TABLE rag_records (collection TEXT NOT NULL REFERENCES rag_collections (name), id TEXT NOT NULL,
	document TEXT NOT NULL, embedding BLOB NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY (collection, id))`,
		Postgres: `CREATE TABLE rag_collections (name TEXT PRIMARY KEY, dimension INTEGER NOT NULL CHECK (dimension > 0));
CREATE TABLE rag_records (collection TEXT NOT NULL REFERENCES rag_collections (name), id TEXT NOT NULL,
	document TEXT NOT NULL, embedding BYTEA NOT NULL, metadata TEXT NOT NULL, PRIMARY KEY (collection, id))`},
	{Version: 2, Name: "change log",
		SQLite: `CREATE TABLE rag_changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, collection TEXT NOT NULL, id TEXT NOT NULL);
CREATE INDEX rag_changes_collection ON rag_changes (collection, seq)`,
		Postgres: `CREATE TABLE rag_changes (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, collection TEXT NOT NULL, id TEXT NOT NULL);
CREATE INDEX rag_changes_collection ON rag_changes (collection, seq)`},
}

// Keeping several processes' indexes in step: every write appends the ids
// it changed to rag_changes in its transaction, writers of one collection
// are serialised (SQLite's write lock, a PostgreSQL advisory lock), so
// sequence order is commit order; a reader that finds a higher sequence
// than it has seen reloads those ids. The log keeps the last
// changeLogKeep entries; a reader further behind reloads everything.
const (
	changeLogKeep       = 100_000
	defaultSyncInterval = 100 * time.Millisecond // how often reads look at the change log
)

// Config configures Open. Zero fields take the defaults.
type Config struct {
	Collection string       // default DefaultCollection
	Dimension  int          // default DefaultDimension; an existing collection's must match
	Logger     *slog.Logger // damaged rows are reported here; nil discards
	// SyncInterval is how often reads look at the change log for another
	// process's writes: such a write shows in a read that starts at least
	// this long after it, unless this process is itself writing or reading
	// the log at that moment (a read does not wait for that; the next read
	// catches up). 0 means 100 ms.
	SyncInterval time.Duration
}

// Store is the SQL-backed rag.Store. It is safe for concurrent use.
type Store struct {
	db   *sqldb.DB
	coll string
	dim  int
	log  *slog.Logger

	// wmu serialises writers so the in-memory index applies changes in
	// commit order; mu guards the index.
	wmu     sync.Mutex
	mu      sync.RWMutex
	ids     []string    // slot → id ("" for a free slot)
	cols    [][]float32 // cols[j][slot]: component j of every vector, so a query touches only its non-zero components
	docs    []string
	metas   []rag.Metadata
	slot    map[string]int
	free    []int
	order   []string            // sorted ids, nil when stale
	words   map[string]*posting // keyword index: word → the slots holding it
	gen     []uint32            // per slot, bumped when its words leave the index
	damaged []string
	lastSeq int64     // the newest change applied to the index; guarded by wmu
	synced  time.Time // when the change log was last looked at; guarded by wmu
	writes  int       // writes since the change log was last trimmed; guarded by wmu
	scores  sync.Pool // *[]float32 buffers of scanRange
	every   time.Duration
}

var _ rag.Store = (*Store)(nil)

// Open applies the store's migrations to db, creates the collection if it
// is new (an existing one must have the same dimension, or T010) and loads
// every record into memory.
func Open(ctx context.Context, db *sqldb.DB, cfg Config) (*Store, error) {
	const op = "sqlstore.Open"
	if cfg.Collection == "" {
		cfg.Collection = DefaultCollection
	}
	if cfg.Dimension == 0 {
		cfg.Dimension = DefaultDimension
	}
	if cfg.Dimension < 0 || cfg.Dimension > 65536 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "dimension %d: want 1–65536", cfg.Dimension)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, err
	}
	s := &Store{db: db, coll: cfg.Collection, dim: cfg.Dimension, log: cfg.Logger, slot: map[string]int{}, words: map[string]*posting{},
		cols: make([][]float32, cfg.Dimension)}
	err := db.Tx(ctx, func(tx *sql.Tx) error {
		var dim int
		err := tx.QueryRowContext(ctx, db.Rebind("SELECT dimension FROM rag_collections WHERE name = ?"), s.coll).Scan(&dim)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			_, err = tx.ExecContext(ctx, db.Rebind("INSERT INTO rag_collections (name, dimension) VALUES (?, ?)"), s.coll, s.dim)
			return err
		case err != nil:
			return err
		case dim != s.dim:
			return talos.Errorf(talos.CodeConfigInvalid, op, "collection %s in %s holds %d-dimensional embeddings, but the embedder makes %d: use the embedder it was built with, or a new collection", s.coll, db, dim, s.dim)
		}
		return nil
	})
	if err != nil {
		return nil, wrap(op, "cannot open collection "+s.coll+" in "+db.String(), err)
	}
	// The log's head before the load: a change committed during the load
	// is applied again at the first sync, which is harmless.
	head, _, err := s.changeHead(ctx, db)
	if err != nil {
		return nil, wrap(op, "cannot read the change log of "+s.coll+" in "+db.String(), err)
	}
	if err := s.load(ctx); err != nil {
		return nil, wrap(op, "cannot load collection "+s.coll+" from "+db.String(), err)
	}
	s.lastSeq, s.synced, s.every = head, time.Now(), cfg.SyncInterval
	if s.every == 0 {
		s.every = defaultSyncInterval
	}
	return s, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// changeHead returns the newest and oldest sequence numbers of the
// collection's change log (0, 0 when empty).
func (s *Store) changeHead(ctx context.Context, q querier) (newest, oldest int64, err error) {
	// Two subqueries, not MAX and MIN in one: each alone is one lookup at
	// an end of the (collection, seq) index, together they scan the
	// collection's whole log (a third of a retrieval's time at 10,000
	// memories).
	err = q.QueryRowContext(ctx, s.db.Rebind("SELECT COALESCE((SELECT MAX(seq) FROM rag_changes WHERE collection = ?), 0), COALESCE((SELECT MIN(seq) FROM rag_changes WHERE collection = ?), 0)"), s.coll, s.coll).Scan(&newest, &oldest)
	return newest, oldest, err
}

// logChanges records ids as changed inside tx, after taking the
// collection's writer lock on PostgreSQL, and returns the log's head before
// and after. s.wmu held.
func (s *Store) logChanges(ctx context.Context, tx *sql.Tx, ids []string) (before, after int64, err error) {
	if s.db.Dialect() == sqldb.Postgres {
		h := fnv.New64a()
		h.Write([]byte("rag_changes:" + s.coll))
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", int64(h.Sum64())); err != nil {
			return 0, 0, err
		}
	}
	if before, _, err = s.changeHead(ctx, tx); err != nil {
		return 0, 0, err
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO rag_changes (collection, id) VALUES (?, ?)"), s.coll, id); err != nil {
			return 0, 0, err
		}
	}
	if after, _, err = s.changeHead(ctx, tx); err != nil {
		return 0, 0, err
	}
	if s.writes++; s.writes >= 256 && after > changeLogKeep {
		s.writes = 0
		if _, err := tx.ExecContext(ctx, s.db.Rebind("DELETE FROM rag_changes WHERE collection = ? AND seq <= ?"), s.coll, after-changeLogKeep); err != nil {
			return 0, 0, err
		}
	}
	return before, after, nil
}

// committed advances the index's place in the change log after this
// process's own write, unless someone else's changes came before it (the
// next sync then applies both). s.wmu held.
func (s *Store) committed(before, after int64) {
	if before == s.lastSeq {
		s.lastSeq = after
	}
}

// sync applies the changes other processes committed since the index last
// looked, at most every Config.SyncInterval. Reads call it first.
//
// A read never waits for the writer lock: when a writer of this process
// holds it (its own changes reach the index as it commits) or another read
// is applying the log under it, the read goes on with the index as it is,
// and a later read looks at the log. Another process's writes can stay
// unseen that much longer than SyncInterval.
func (s *Store) sync(ctx context.Context) error {
	if !s.wmu.TryLock() {
		return nil
	}
	defer s.wmu.Unlock()
	return s.syncLocked(ctx)
}

// syncRead brings the index up to date before a read (locked: s.wmu is
// already held). A failure is logged and the read goes on with the index
// as it is: the records in memory are still valid, only possibly stale.
func (s *Store) syncRead(ctx context.Context, locked bool) {
	var err error
	if locked {
		err = s.syncLocked(ctx)
	} else {
		err = s.sync(ctx)
	}
	if err != nil && ctx.Err() == nil {
		s.log.Warn("rag/sqlstore: cannot read the change log; serving the index as loaded", "collection", s.coll, "err", err)
	}
}

// syncLocked is sync with s.wmu held.
func (s *Store) syncLocked(ctx context.Context) error {
	if time.Since(s.synced) < s.every {
		return nil
	}
	newest, oldest, err := s.changeHead(ctx, s.db)
	if err != nil {
		return err
	}
	s.synced = time.Now()
	if newest == s.lastSeq {
		return nil
	}
	if newest < s.lastSeq || oldest > s.lastSeq+1 {
		// The log was trimmed past us, or the database was replaced (a
		// restore): load everything again.
		s.mu.Lock()
		defer s.mu.Unlock()
		s.reset()
		if err := s.load(ctx); err != nil {
			return err
		}
		s.lastSeq = newest
		return nil
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT DISTINCT id FROM rag_changes WHERE collection = ? AND seq > ? AND seq <= ?"), s.coll, s.lastSeq, newest)
	if err != nil {
		return err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return err
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	type rec struct {
		doc string
		vec []float32
		md  rag.Metadata
	}
	found := map[string]*rec{}
	for lo := 0; lo < len(ids); lo += 500 {
		part := ids[lo:min(lo+500, len(ids))]
		args := []any{s.coll}
		for _, id := range part {
			args = append(args, id)
		}
		rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT id, document, embedding, metadata FROM rag_records WHERE collection = ? AND id IN (?"+strings.Repeat(", ?", len(part)-1)+")"), args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id, doc, meta string
			var blob []byte
			if err := rows.Scan(&id, &doc, &blob, &meta); err != nil {
				rows.Close()
				return err
			}
			vec, err := decodeVec(blob, s.dim)
			var md rag.Metadata
			if err == nil {
				md, err = decodeMeta(meta)
			}
			if err != nil {
				s.log.Error("rag/sqlstore: skipping a damaged memory; restore it from a backup or delete it", "collection", s.coll, "id", id, "err", err)
				continue
			}
			found[id] = &rec{doc, vec, md}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		if r := found[id]; r != nil {
			s.put(id, r.doc, r.vec, r.md)
		} else {
			s.remove(id)
		}
	}
	s.lastSeq = newest
	return nil
}

func (s *Store) load(ctx context.Context) error {
	// Size the index once: appending 100,000 records to 384 growing
	// columns would copy each column about 17 times.
	var n int
	if err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT COUNT(*) FROM rag_records WHERE collection = ?"), s.coll).Scan(&n); err != nil {
		return err
	}
	for j := range s.cols {
		s.cols[j] = make([]float32, 0, n)
	}
	s.ids = make([]string, 0, n)
	s.gen = make([]uint32, 0, n)
	s.docs = make([]string, 0, n)
	s.metas = make([]rag.Metadata, 0, n)
	s.slot = make(map[string]int, n)
	rows, err := s.db.QueryContext(ctx, s.db.Rebind("SELECT id, document, embedding, metadata FROM rag_records WHERE collection = ?"), s.coll)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var id, doc, meta string
		var blob []byte
		if err := rows.Scan(&id, &doc, &blob, &meta); err != nil {
			return err
		}
		vec, err := decodeVec(blob, s.dim)
		var md rag.Metadata
		if err == nil {
			md, err = decodeMeta(meta)
		}
		if err != nil {
			s.damaged = append(s.damaged, id)
			s.log.Error("rag/sqlstore: skipping a damaged memory; restore it from a backup or delete it", "collection", s.coll, "id", id, "err", err)
			continue
		}
		s.put(id, doc, vec, md)
	}
	return rows.Err()
}

// Damaged returns the ids of records Open skipped because they could not be
// decoded.
func (s *Store) Damaged() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]string(nil), s.damaged...)
}

// Dimension implements rag.Store.
func (s *Store) Dimension() int { return s.dim }

// put stores a record in the index. s.mu held for writing (or during load).
func (s *Store) put(id, doc string, vec []float32, md rag.Metadata) {
	i, ok := s.slot[id]
	if ok {
		s.unindexWords(i)
	} else {
		if n := len(s.free); n > 0 {
			i, s.free = s.free[n-1], s.free[:n-1]
		} else {
			i = len(s.ids)
			s.ids = append(s.ids, "")
			s.gen = append(s.gen, 0)
			s.docs = append(s.docs, "")
			s.metas = append(s.metas, nil)
			for j := range s.cols {
				s.cols[j] = append(s.cols[j], 0)
			}
		}
		s.slot[id] = i
		s.order = nil
	}
	s.ids[i], s.docs[i], s.metas[i] = id, doc, md
	for j, x := range vec {
		s.cols[j][i] = x
	}
	s.indexWords(i)
}

// remove drops a record from the index. s.mu held for writing.
func (s *Store) remove(id string) bool {
	i, ok := s.slot[id]
	if !ok {
		return false
	}
	s.unindexWords(i)
	delete(s.slot, id)
	s.ids[i], s.docs[i], s.metas[i] = "", "", nil
	for j := range s.cols {
		s.cols[j][i] = 0
	}
	s.free = append(s.free, i)
	s.order = nil
	return true
}

// Upsert implements rag.Store: the records are written in one transaction
// and are in the index when it returns.
func (s *Store) Upsert(ctx context.Context, recs []rag.Record) error {
	const op = "sqlstore.Upsert"
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Records(op, s.dim, recs); err != nil {
		return err
	}
	type row struct {
		rec  rag.Record
		blob []byte
		meta string
	}
	rows := make([]row, len(recs))
	for i, r := range recs {
		md := r.Metadata.Clone()
		if md == nil {
			md = rag.Metadata{}
		}
		md.Normalize()
		meta, err := encodeMeta(md)
		if err != nil {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: %v", r.ID, err)
		}
		vec := rag.Normalize(r.Embedding)
		rows[i] = row{rag.Record{ID: r.ID, Document: r.Document, Embedding: vec, Metadata: md}, encodeVec(vec), meta}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	ids := make([]string, len(rows))
	for i, r := range rows {
		ids[i] = r.rec.ID
	}
	var before, after int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if before, after, err = s.logChanges(ctx, tx, ids); err != nil {
			return err
		}
		for _, r := range rows {
			if _, err := tx.ExecContext(ctx, s.db.Rebind("DELETE FROM rag_records WHERE collection = ? AND id = ?"), s.coll, r.rec.ID); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO rag_records (collection, id, document, embedding, metadata) VALUES (?, ?, ?, ?, ?)"),
				s.coll, r.rec.ID, r.rec.Document, r.blob, r.meta); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(op, fmt.Sprintf("cannot store %d memories in %s", len(recs), s.db), err)
	}
	s.committed(before, after)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range rows {
		s.put(r.rec.ID, r.rec.Document, r.rec.Embedding, r.rec.Metadata)
	}
	return nil
}

// Query implements rag.Store with an exact search over every record.
func (s *Store) Query(ctx context.Context, emb []float32, n int, where *rag.Filter) ([]rag.Match, error) {
	const op = "sqlstore.Query"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.syncRead(ctx, false)
	if err := storecheck.Embedding(op, s.dim, emb); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "n is %d; it must be at least 1", n)
	}
	if where != nil {
		if err := where.Validate(); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
		}
	}
	q := rag.Normalize(emb)
	s.mu.RLock()
	defer s.mu.RUnlock()
	hits := s.scan(q, n, where)
	out := make([]rag.Match, len(hits))
	for i, h := range hits {
		out[i] = rag.Match{Record: s.record(h.slot, true), Similarity: float64(h.sim)}
	}
	return out, nil
}

type hit struct {
	slot int
	sim  float32
}

// better orders hits: higher similarity first, then id.
func (s *Store) better(a, b hit) bool {
	if a.sim != b.sim {
		return a.sim > b.sim
	}
	return s.ids[a.slot] < s.ids[b.slot]
}

// scan returns the n best slots for q. s.mu held.
//
// Scores are accumulated column by column over the query's non-zero
// components only (a lexical embedder's query has a tenth of them), in one
// goroutine per CPU over ranges of slots.
func (s *Store) scan(q []float32, n int, where *rag.Filter) []hit {
	var nz []int
	for j, x := range q {
		if x != 0 {
			nz = append(nz, j)
		}
	}
	slots := len(s.ids)
	workers := min(runtime.GOMAXPROCS(0), max(1, slots*len(nz)/(1<<20)))
	parts := make([][]hit, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := slots*w/workers, slots*(w+1)/workers
		wg.Add(1)
		go func() {
			defer wg.Done()
			parts[w] = s.scanRange(q, nz, n, where, lo, hi)
		}()
	}
	wg.Wait()
	var all []hit
	for _, p := range parts {
		all = append(all, p...)
	}
	sort.Slice(all, func(i, j int) bool { return s.better(all[i], all[j]) })
	if len(all) > n {
		all = all[:n]
	}
	return all
}

// scanRange scores slots [lo, hi) and keeps the n best in a min-heap.
func (s *Store) scanRange(q []float32, nz []int, n int, where *rag.Filter, lo, hi int) []hit {
	// A query's scores are large (4 bytes a memory): reusing them keeps
	// queries from driving the garbage collector, whose marking of a big
	// index is what queries would otherwise wait for.
	buf, _ := s.scores.Get().(*[]float32)
	if buf == nil {
		buf = new([]float32)
	}
	defer s.scores.Put(buf)
	if cap(*buf) < hi-lo {
		*buf = make([]float32, hi-lo)
	}
	scores := (*buf)[:hi-lo]
	clear(scores)
	for _, j := range nz {
		axpy(scores, q[j], s.cols[j][lo:hi])
	}
	h := make([]hit, 0, min(n, hi-lo))
	for k, sim := range scores {
		i := lo + k
		if s.ids[i] == "" || (where != nil && !where.Match(s.metas[i])) {
			continue
		}
		c := hit{i, sim}
		if len(h) < n {
			h = append(h, c)
			up(h, len(h)-1, s)
		} else if s.better(c, h[0]) {
			h[0] = c
			down(h, 0, s)
		}
	}
	return h
}

// axpy adds a·x to y.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	n := len(y) &^ 3
	for i := 0; i < n; i += 4 {
		y[i] += a * x[i]
		y[i+1] += a * x[i+1]
		y[i+2] += a * x[i+2]
		y[i+3] += a * x[i+3]
	}
	for i := n; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// up and down keep h a min-heap under s.better (worst hit at the root).
func up(h []hit, i int, s *Store) {
	for i > 0 {
		p := (i - 1) / 2
		if !s.better(h[p], h[i]) {
			break
		}
		h[p], h[i] = h[i], h[p]
		i = p
	}
}

func down(h []hit, i int, s *Store) {
	for {
		l, w := 2*i+1, i
		if l < len(h) && s.better(h[w], h[l]) {
			w = l
		}
		if r := l + 1; r < len(h) && s.better(h[w], h[r]) {
			w = r
		}
		if w == i {
			return
		}
		h[i], h[w] = h[w], h[i]
		i = w
	}
}

// record copies slot i out of the index. s.mu held.
func (s *Store) record(i int, withEmb bool) rag.Record {
	r := rag.Record{ID: s.ids[i], Document: s.docs[i], Metadata: s.metas[i].Clone()}
	if withEmb {
		r.Embedding = make([]float32, s.dim)
		for j := range s.cols {
			r.Embedding[j] = s.cols[j][i]
		}
	}
	return r
}

// Get implements rag.Store.
func (s *Store) Get(ctx context.Context, ids []string) ([]rag.Record, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.syncRead(ctx, false)
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []rag.Record
	seen := map[string]bool{}
	for _, id := range ids {
		if i, ok := s.slot[id]; ok && !seen[id] {
			seen[id] = true
			out = append(out, s.record(i, true))
		}
	}
	return out, nil
}

// UpdateMetadata implements rag.Store.
func (s *Store) UpdateMetadata(ctx context.Context, updates map[string]rag.Metadata) error {
	const op = "sqlstore.UpdateMetadata"
	if err := ctx.Err(); err != nil {
		return err
	}
	for id, md := range updates {
		if err := md.Validate(); err != nil {
			return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: %v", id, err)
		}
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.syncRead(ctx, true)
	merged := map[string]rag.Metadata{}
	s.mu.RLock()
	for id, md := range updates {
		i, ok := s.slot[id]
		if !ok {
			continue
		}
		m := s.metas[i].Clone()
		for k, v := range md.Clone().Normalize() {
			m[k] = v
		}
		merged[id] = m
	}
	s.mu.RUnlock()
	ids := make([]string, 0, len(merged))
	for id := range merged {
		ids = append(ids, id)
	}
	var before, after int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if before, after, err = s.logChanges(ctx, tx, ids); err != nil {
			return err
		}
		for id, md := range merged {
			meta, err := encodeMeta(md)
			if err != nil {
				return talos.Errorf(talos.CodeConfigInvalid, op, "record %q: %v", id, err)
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind("UPDATE rag_records SET metadata = ? WHERE collection = ? AND id = ?"), meta, s.coll, id); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(op, fmt.Sprintf("cannot update %d memories in %s", len(merged), s.db), err)
	}
	s.committed(before, after)
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, md := range merged {
		if i, ok := s.slot[id]; ok {
			s.metas[i] = md
		}
	}
	return nil
}

// Delete implements rag.Store.
func (s *Store) Delete(ctx context.Context, ids []string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.deleteIDs(ctx, "sqlstore.Delete", ids)
}

// deleteIDs deletes ids in batches in one transaction. s.wmu held.
func (s *Store) deleteIDs(ctx context.Context, op string, ids []string) error {
	const batch = 500
	var before, after int64
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		if before, after, err = s.logChanges(ctx, tx, ids); err != nil {
			return err
		}
		for lo := 0; lo < len(ids); lo += batch {
			part := ids[lo:min(lo+batch, len(ids))]
			args := []any{s.coll}
			for _, id := range part {
				args = append(args, id)
			}
			q := "DELETE FROM rag_records WHERE collection = ? AND id IN (?" + strings.Repeat(", ?", len(part)-1) + ")"
			if _, err := tx.ExecContext(ctx, s.db.Rebind(q), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return wrap(op, fmt.Sprintf("cannot delete %d memories from %s", len(ids), s.db), err)
	}
	s.committed(before, after)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range ids {
		s.remove(id)
	}
	return nil
}

// DeleteWhere implements rag.Store.
func (s *Store) DeleteWhere(ctx context.Context, where rag.Filter) (int, error) {
	const op = "sqlstore.DeleteWhere"
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := where.Validate(); err != nil {
		return 0, talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
	}
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.syncRead(ctx, true)
	var ids []string
	s.mu.RLock()
	for i, id := range s.ids {
		if id != "" && where.Match(s.metas[i]) {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	if len(ids) == 0 {
		return 0, nil
	}
	if err := s.deleteIDs(ctx, op, ids); err != nil {
		return 0, err
	}
	return len(ids), nil
}

// Count implements rag.Store.
func (s *Store) Count(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.syncRead(ctx, false)
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.slot), nil
}

// Stored counts the collection's rows in the database: the records this
// Store holds, plus those other processes wrote since Open, plus the
// damaged rows it skipped.
func (s *Store) Stored(ctx context.Context) (int, error) {
	var n int
	err := s.db.QueryRowContext(ctx, s.db.Rebind("SELECT COUNT(*) FROM rag_records WHERE collection = ?"), s.coll).Scan(&n)
	if err != nil {
		return 0, wrap("sqlstore.Stored", "cannot count the memories of collection "+s.coll+" in "+s.db.String(), err)
	}
	return n, nil
}

// Collection is the name of the collection the Store works on.
func (s *Store) Collection() string { return s.coll }

// List implements rag.Store; pages come in id order.
func (s *Store) List(ctx context.Context, opts rag.ListOptions) ([]rag.Record, error) {
	const op = "sqlstore.List"
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.syncRead(ctx, false)
	if opts.Where != nil {
		if err := opts.Where.Validate(); err != nil {
			return nil, talos.E(talos.CodeConfigInvalid, op, err.Error(), nil)
		}
	}
	if opts.Offset < 0 || opts.Limit < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "offset %d and limit %d must not be negative", opts.Offset, opts.Limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.order == nil {
		s.order = make([]string, 0, len(s.slot))
		for id := range s.slot {
			s.order = append(s.order, id)
		}
		sort.Strings(s.order)
	}
	docOK := storecheck.DocumentMatcher(opts)
	var out []rag.Record
	skipped := 0
	for _, id := range s.order {
		i := s.slot[id]
		if !storecheck.Match(opts.Where, s.metas[i]) || (docOK != nil && !docOK(s.docs[i])) {
			continue
		}
		if skipped < opts.Offset {
			skipped++
			continue
		}
		out = append(out, s.record(i, opts.Embeddings))
		if opts.Limit > 0 && len(out) >= opts.Limit {
			break
		}
	}
	return out, nil
}

// Close releases the index; the database stays open (its owner closes it).
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reset()
	return nil
}

// reset empties the index. s.mu held.
func (s *Store) reset() {
	s.ids, s.docs, s.metas, s.slot, s.words, s.gen = nil, nil, nil, map[string]int{}, map[string]*posting{}, nil
	s.cols = make([][]float32, s.dim)
	s.free, s.order, s.damaged = nil, nil, nil
}

func wrap(op, msg string, err error) error {
	if te := (*talos.Error)(nil); errors.As(err, &te) {
		return err
	}
	return talos.E(talos.CodeConfigInvalid, op, msg, err)
}

// encodeVec is the stored form of an embedding: little-endian float32s.
func encodeVec(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func decodeVec(b []byte, dim int) ([]float32, error) {
	if len(b) != 4*dim {
		return nil, fmt.Errorf("embedding of %d bytes, want %d (%d float32s)", len(b), 4*dim, dim)
	}
	v := make([]float32, dim)
	zero := true
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if math.IsNaN(float64(v[i])) || math.IsInf(float64(v[i]), 0) {
			return nil, fmt.Errorf("embedding value %d is %v", i, v[i])
		}
		zero = zero && v[i] == 0
	}
	if zero {
		return nil, errors.New("embedding is all zeros")
	}
	return v, nil
}

// encodeMeta stores metadata as a JSON object of [type, value] pairs, so
// that an int64 and a float64 of the same value come back as they went in.
func encodeMeta(md rag.Metadata) (string, error) {
	out := make(map[string][2]string, len(md))
	for k, v := range md {
		switch x := v.(type) {
		case string:
			out[k] = [2]string{"s", x}
		case int64:
			out[k] = [2]string{"i", strconv.FormatInt(x, 10)}
		case float64:
			out[k] = [2]string{"f", strconv.FormatFloat(x, 'g', -1, 64)}
		case bool:
			out[k] = [2]string{"b", strconv.FormatBool(x)}
		default:
			return "", fmt.Errorf("metadata %q has a %T; want string, integer, float or bool", k, v)
		}
	}
	b, err := json.Marshal(out)
	return string(b), err
}

func decodeMeta(s string) (rag.Metadata, error) {
	var in map[string][2]string
	if err := json.Unmarshal([]byte(s), &in); err != nil {
		return nil, fmt.Errorf("metadata is not valid: %w", err)
	}
	md := make(rag.Metadata, len(in))
	for k, tv := range in {
		var err error
		switch tv[0] {
		case "s":
			md[k] = tv[1]
		case "i":
			md[k], err = strconv.ParseInt(tv[1], 10, 64)
		case "f":
			md[k], err = strconv.ParseFloat(tv[1], 64)
		case "b":
			md[k], err = strconv.ParseBool(tv[1])
		default:
			err = fmt.Errorf("unknown type %q", tv[0])
		}
		if err != nil {
			return nil, fmt.Errorf("metadata %q: %w", k, err)
		}
	}
	return md, nil
}
