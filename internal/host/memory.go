package host

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chroma"
	"github.com/talos-ironclad/talos/rag/chromem"
	"github.com/talos-ironclad/talos/rag/hashembed"
	ragsql "github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
)

// MemoryArchiveFile is where pruned memories are archived before deletion,
// relative to Home.
const MemoryArchiveFile = "data/pruned-memories.jsonl"

// MemoryOptions override where OpenMemory looks; zero fields follow the
// configuration.
type MemoryOptions struct {
	Collection string // default rag/sqlstore.DefaultCollection ("talos_memory")
	Dimension  int    // default the default embedder's
	StoreDir   string // the chromem folder (TALOS_MEMORY_STORE=chromem); default data/chromadb
	DBPath     string // the SQLite file (embedded relational store); default data/talos.db
}

// Memory is an open long-term memory store and what to close.
type Memory struct {
	Store rag.Store
	DB    *sqldb.DB // the relational store holding the memories, or nil
	Where string    // the store for messages, without secrets
	// Pruner is the running agent's pruner over Store, when Store is the
	// agent's (MaintenanceDeps.Memory), so that the nightly phases and the
	// agent's own prunes take turns; nil: a phase makes its own.
	Pruner *prune.Pruner
}

// Close closes the store and its database.
func (m *Memory) Close() error {
	err := m.Store.Close()
	if m.DB != nil {
		if cerr := m.DB.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// MemoryOutsideHome reports whether OpenMemory keeps cfg's memories outside
// the home's files, on the Chroma server of TALOS_CHROMA_URL: a backup then
// exports them (the embedded stores are files of data/, PostgreSQL is
// dumped with pg_dump).
func MemoryOutsideHome(cfg *config.Config) bool { return cfg.ChromaURL != "" }

// OpenBackupMemory opens the store a backup exports and a restore imports
// into: OpenMemory's when the memories live outside the home, else nil
// (the backup copies them as files).
func OpenBackupMemory(ctx context.Context, cfg *config.Config, o MemoryOptions) (*Memory, error) {
	if !MemoryOutsideHome(cfg) {
		return nil, nil
	}
	return OpenMemory(ctx, cfg, o)
}

// OpenMemory opens the long-term memory store of cfg: the Chroma server of
// TALOS_CHROMA_URL, else the store TALOS_MEMORY_STORE names — the
// relational store (data/talos.db or TALOS_POSTGRES_URL, the default) or the
// chromem folder.
func OpenMemory(ctx context.Context, cfg *config.Config, o MemoryOptions) (*Memory, error) {
	if o.Collection == "" {
		o.Collection = ragsql.DefaultCollection
	}
	if o.Dimension == 0 {
		o.Dimension = hashembed.DefaultDimension
	}
	switch {
	case MemoryOutsideHome(cfg):
		s, err := chroma.Open(ctx, chroma.Config{URL: cfg.ChromaURL, Collection: o.Collection, Dimension: o.Dimension})
		if err != nil {
			return nil, err
		}
		return &Memory{Store: s, Where: fmt.Sprintf("Chroma at %s, collection %s", redact.URL(cfg.ChromaURL), o.Collection)}, nil
	case cfg.MemoryStore == config.MemoryStoreChromem:
		dir := o.StoreDir
		if dir == "" {
			dir = filepath.Join(cfg.Home, layout.DataChroma)
		}
		s, err := chromem.Open(chromem.Config{Path: dir, Collection: o.Collection, Dimension: o.Dimension})
		if err != nil {
			return nil, err
		}
		return &Memory{Store: s, Where: fmt.Sprintf("%s, collection %s", dir, o.Collection)}, nil
	}
	dsn, where := SQLDSN(cfg), "PostgreSQL at "+redact.URL(cfg.PostgresURL)
	if cfg.PostgresURL == "" {
		if o.DBPath != "" {
			dsn = o.DBPath
		}
		where = dsn
	}
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	s, err := ragsql.Open(ctx, db, ragsql.Config{Collection: o.Collection, Dimension: o.Dimension})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &Memory{Store: s, DB: db, Where: fmt.Sprintf("%s, collection %s", where, o.Collection)}, nil
}
