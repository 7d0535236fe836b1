package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/sqldb"
)

// Component is the name under which the store's schema version is recorded
// in the talos_schema table.
const Component = "quarantine"

// AuditTable is the table of the audit chain.
const AuditTable = "quarantine_audit"

const skillsTable = `quarantine_skills (
	skill_id        TEXT NOT NULL,
	version         TEXT NOT NULL,
	content_hash    TEXT NOT NULL,
	state           TEXT NOT NULL,
	language        TEXT NOT NULL,
	entry           TEXT NOT NULL,
	source_type     TEXT NOT NULL,
	source_origin   TEXT NOT NULL,
	path            TEXT NOT NULL,
	active_path     TEXT NOT NULL,
	size_bytes      BIGINT NOT NULL,
	created_at      TEXT NOT NULL,
	updated_at      TEXT NOT NULL,
	scan_status     TEXT NOT NULL,
	scanned_at      TEXT NOT NULL,
	clean_runs      INTEGER NOT NULL,
	failed_runs     INTEGER NOT NULL,
	last_failure_at TEXT NOT NULL,
	approval        TEXT NOT NULL,
	PRIMARY KEY (skill_id, version, content_hash),
	CHECK (state IN ('pending','executing','passed','failed','awaiting_promotion','promoted','rejected','deprecated'))
)`

// Migrations returns the schema of the store, for sqldb.DB.Migrate.
func Migrations() []sqldb.Migration {
	idx := "CREATE INDEX quarantine_skills_state ON quarantine_skills (state);CREATE INDEX quarantine_skills_created ON quarantine_skills (created_at)"
	return []sqldb.Migration{
		{Version: 1, Name: "quarantine_skills", SQLite: "CREATE TABLE " + skillsTable + ";" + idx, Postgres: "CREATE TABLE " + skillsTable + ";" + idx},
		sqldb.ChainMigration(2, AuditTable),
	}
}

// Store is a quarantine.Store on a sqldb.DB.
type Store struct {
	db    *sqldb.DB
	chain *sqldb.Chain
}

var _ quarantine.Store = (*Store)(nil)

// New migrates db to the store's schema and returns the store. auditKey
// signs the audit chain: at least sqldb.MinChainKeyLen random bytes, kept
// secret (TALOS_AUDIT_KEY).
func New(ctx context.Context, db *sqldb.DB, auditKey []byte) (*Store, error) {
	chain, err := sqldb.NewChain(AuditTable, auditKey)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx, Component, Migrations()); err != nil {
		return nil, err
	}
	return &Store{db: db, chain: chain}, nil
}

const columns = "skill_id, version, content_hash, state, language, entry, source_type, source_origin, path, active_path, size_bytes, created_at, updated_at, scan_status, scanned_at, clean_runs, failed_runs, last_failure_at, approval"

// timeLayout is RFC 3339 in UTC with all nine fractional digits, so that
// stored times sort as text in time order (RFC3339Nano drops trailing
// zeros, and "…:00Z" would sort after "…:00.5Z").
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func ts(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTS(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(time.RFC3339Nano, s)
}

func args(r quarantine.Record) ([]any, error) {
	approval := ""
	if r.Approval != nil {
		b, err := json.Marshal(r.Approval)
		if err != nil {
			return nil, err
		}
		approval = string(b)
	}
	return []any{r.ID, r.Version, r.Hash, string(r.State), string(r.Language), r.Entry, string(r.Source.Type), r.Source.Origin,
		r.Path, r.ActivePath, r.SizeBytes, ts(r.CreatedAt), ts(r.UpdatedAt), string(r.Scan), ts(r.ScannedAt),
		r.CleanRuns, r.FailedRuns, ts(r.LastFailureAt), approval}, nil
}

type scanner interface{ Scan(dest ...any) error }

func scanRecord(row scanner) (quarantine.Record, error) {
	var r quarantine.Record
	var state, lang, stype, scan, created, updated, scanned, lastFail, approval string
	err := row.Scan(&r.ID, &r.Version, &r.Hash, &state, &lang, &r.Entry, &stype, &r.Source.Origin, &r.Path, &r.ActivePath,
		&r.SizeBytes, &created, &updated, &scan, &scanned, &r.CleanRuns, &r.FailedRuns, &lastFail, &approval)
	if err != nil {
		return r, err
	}
	r.State, r.Language, r.Source.Type, r.Scan = quarantine.State(state), quarantine.Language(lang), quarantine.SourceType(stype), quarantine.ScanStatus(scan)
	var errs []error
	for _, p := range []struct {
		dst *time.Time
		s   string
	}{{&r.CreatedAt, created}, {&r.UpdatedAt, updated}, {&r.ScannedAt, scanned}, {&r.LastFailureAt, lastFail}} {
		t, err := parseTS(p.s)
		errs = append(errs, err)
		*p.dst = t
	}
	if approval != "" {
		r.Approval = new(quarantine.Approval)
		errs = append(errs, json.Unmarshal([]byte(approval), r.Approval))
	}
	if err := errors.Join(errs...); err != nil {
		return r, fmt.Errorf("record %s is corrupt: %w", r.Key, err)
	}
	return r, nil
}

func (s *Store) fail(op, msg string, err error) error {
	code := talos.CodeConfigInvalid
	if s.db.Dialect() == sqldb.Postgres {
		code = talos.CodePostgres
	}
	return talos.E(code, op, msg+" on "+s.db.String(), err)
}

func notFound(op string, k quarantine.Key) error {
	return talos.E(talos.CodePolicyDenied, op, "no skill record "+k.String()+": add the skill first", quarantine.ErrNotFound)
}

func chainEntry(k quarantine.Key, e quarantine.AuditEntry) (sqldb.ChainEntry, error) {
	data, err := json.Marshal(struct {
		From   quarantine.State `json:"from,omitempty"`
		To     quarantine.State `json:"to,omitempty"`
		Reason string           `json:"reason,omitempty"`
	}{e.From, e.To, e.Reason})
	return sqldb.ChainEntry{Actor: e.Actor, Event: e.Event, Subject: k.Subject(), Data: data}, err
}

// Create implements quarantine.Store.
func (s *Store) Create(ctx context.Context, rec quarantine.Record, entry quarantine.AuditEntry) error {
	const op = "sqlstore.Store.Create"
	a, err := args(rec)
	if err != nil {
		return s.fail(op, "cannot encode "+rec.Key.String(), err)
	}
	ce, err := chainEntry(rec.Key, entry)
	if err != nil {
		return s.fail(op, "cannot encode the audit entry of "+rec.Key.String(), err)
	}
	exists := false
	err = s.db.Tx(ctx, func(tx *sql.Tx) error {
		// ON CONFLICT DO NOTHING makes a concurrent twin wait for the first
		// insert and then insert nothing, on both dialects.
		res, err := tx.ExecContext(ctx, s.db.Rebind("INSERT INTO quarantine_skills ("+columns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (skill_id, version, content_hash) DO NOTHING"), a...)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if exists = n == 0; exists {
			return nil
		}
		_, err = s.chain.Append(ctx, s.db, tx, ce)
		return err
	})
	if err != nil {
		return s.fail(op, "cannot add skill record "+rec.Key.String(), err)
	}
	if exists {
		return talos.E(talos.CodePolicyDenied, op, "skill record "+rec.Key.String()+" already exists", quarantine.ErrExists)
	}
	return nil
}

// Get implements quarantine.Store.
func (s *Store) Get(ctx context.Context, key quarantine.Key) (quarantine.Record, error) {
	const op = "sqlstore.Store.Get"
	r, err := scanRecord(s.db.QueryRowContext(ctx, s.db.Rebind("SELECT "+columns+" FROM quarantine_skills WHERE skill_id = ? AND version = ? AND content_hash = ?"), key.ID, key.Version, key.Hash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return r, notFound(op, key)
	case err != nil:
		return r, s.fail(op, "cannot read skill record "+key.String(), err)
	}
	return r, nil
}

// List implements quarantine.Store.
func (s *Store) List(ctx context.Context, f quarantine.Filter) ([]quarantine.Record, error) {
	const op = "sqlstore.Store.List"
	q := "SELECT " + columns + " FROM quarantine_skills WHERE 1 = 1"
	var a []any
	if f.ID != "" {
		q += " AND skill_id = ?"
		a = append(a, f.ID)
	}
	if f.State != "" {
		q += " AND state = ?"
		a = append(a, string(f.State))
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(q+" ORDER BY created_at, skill_id, version, content_hash"), a...)
	if err != nil {
		return nil, s.fail(op, "cannot list skill records", err)
	}
	defer rows.Close()
	var out []quarantine.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, s.fail(op, "cannot list skill records", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.fail(op, "cannot list skill records", err)
	}
	return out, nil
}

// Update implements quarantine.Store. On PostgreSQL the row is locked with
// SELECT … FOR UPDATE; on SQLite the transaction holds the write lock from
// its start.
func (s *Store) Update(ctx context.Context, key quarantine.Key, fn func(rec *quarantine.Record) (quarantine.AuditEntry, error)) (quarantine.Record, error) {
	const op = "sqlstore.Store.Update"
	var out quarantine.Record
	var fnErr error
	lock := ""
	if s.db.Dialect() == sqldb.Postgres {
		lock = " FOR UPDATE"
	}
	err := s.db.Tx(ctx, func(tx *sql.Tx) error {
		fnErr = nil
		r, err := scanRecord(tx.QueryRowContext(ctx, s.db.Rebind("SELECT "+columns+" FROM quarantine_skills WHERE skill_id = ? AND version = ? AND content_hash = ?"+lock), key.ID, key.Version, key.Hash))
		if errors.Is(err, sql.ErrNoRows) {
			fnErr = notFound(op, key)
			return fnErr
		}
		if err != nil {
			return err
		}
		e, err := fn(&r)
		if err != nil {
			fnErr = err
			return err
		}
		if r.Key != key {
			fnErr = fmt.Errorf("%s: fn changed the key of %s", op, key)
			return fnErr
		}
		a, err := args(r)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind("UPDATE quarantine_skills SET state = ?, language = ?, entry = ?, source_type = ?, source_origin = ?, path = ?, active_path = ?, size_bytes = ?, created_at = ?, updated_at = ?, scan_status = ?, scanned_at = ?, clean_runs = ?, failed_runs = ?, last_failure_at = ?, approval = ? WHERE skill_id = ? AND version = ? AND content_hash = ?"),
			append(a[3:], a[0], a[1], a[2])...); err != nil {
			return err
		}
		ce, err := chainEntry(key, e)
		if err != nil {
			return err
		}
		if _, err := s.chain.Append(ctx, s.db, tx, ce); err != nil {
			return err
		}
		out = r
		return nil
	})
	if fnErr != nil {
		return quarantine.Record{}, fnErr
	}
	if err != nil {
		return quarantine.Record{}, s.fail(op, "cannot update skill record "+key.String(), err)
	}
	return out, nil
}

// Audit implements quarantine.Store.
func (s *Store) Audit(ctx context.Context, key quarantine.Key) ([]quarantine.AuditEntry, error) {
	es, err := s.chain.Entries(ctx, s.db, key.Subject())
	if err != nil {
		return nil, err
	}
	out := make([]quarantine.AuditEntry, 0, len(es))
	for _, ce := range es {
		var d struct {
			From   quarantine.State `json:"from"`
			To     quarantine.State `json:"to"`
			Reason string           `json:"reason"`
		}
		json.Unmarshal(ce.Data, &d) // verified by Verify; a bad entry shows with empty details
		out = append(out, quarantine.AuditEntry{Seq: ce.Seq, Time: ce.Time, Key: key, Actor: ce.Actor, Event: ce.Event, From: d.From, To: d.To, Reason: d.Reason})
	}
	return out, nil
}

// Verify implements quarantine.Store.
func (s *Store) Verify(ctx context.Context) (quarantine.AuditHead, error) {
	h, err := s.chain.Verify(ctx, s.db)
	return quarantine.AuditHead{Entries: h.Entries, Hash: h.Hash}, err
}
