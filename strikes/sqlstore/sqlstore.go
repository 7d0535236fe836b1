package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/strikes"
)

// Component is the name the schema is versioned under in talos_schema.
const Component = "strikes"

// AuditTable is the table of the strike audit chain.
const AuditTable = "strike_audit"

// timeFormat is RFC 3339 in UTC with all nine fraction digits, so stored
// times sort as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z07:00"

// Migrations are the schema versions of the strike store, for both dialects.
var Migrations = []sqldb.Migration{
	{Version: 1, Name: "strikes and deprecations",
		SQLite: `CREATE TABLE strikes (
	skill_id TEXT NOT NULL, version TEXT NOT NULL, content_hash TEXT NOT NULL, number INTEGER NOT NULL CHECK (number > 0),
	type TEXT NOT NULL CHECK (type IN ('unhandled_exception', 'timeout', 'resource_violation', 'security_violation')),
	exception_type TEXT NOT NULL, message TEXT NOT NULL, exception_hash TEXT NOT NULL,
	execution_id TEXT NOT NULL, session_id TEXT NOT NULL, container_id TEXT NOT NULL,
	occurred_at TEXT NOT NULL, expires_at TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('active', 'expired', 'overturned')), signature TEXT NOT NULL,
	PRIMARY KEY (skill_id, version, number));
CREATE INDEX strikes_content_hash ON strikes (content_hash);
CREATE TABLE strike_deprecations (
	skill_id TEXT NOT NULL, version TEXT NOT NULL, content_hash TEXT NOT NULL, at TEXT NOT NULL, by_actor TEXT NOT NULL,
	numbers TEXT NOT NULL, final_type TEXT NOT NULL, final_reason TEXT NOT NULL,
	PRIMARY KEY (skill_id, version))`,
		Postgres: `CREATE TABLE strikes (
	skill_id TEXT NOT NULL, version TEXT NOT NULL, content_hash TEXT NOT NULL, number INTEGER NOT NULL CHECK (number > 0),
	type TEXT NOT NULL CHECK (type IN ('unhandled_exception', 'timeout', 'resource_violation', 'security_violation')),
	exception_type TEXT NOT NULL, message TEXT NOT NULL, exception_hash TEXT NOT NULL,
	execution_id TEXT NOT NULL, session_id TEXT NOT NULL, container_id TEXT NOT NULL,
	occurred_at TEXT NOT NULL, expires_at TEXT NOT NULL,
	status TEXT NOT NULL CHECK (status IN ('active', 'expired', 'overturned')), signature TEXT NOT NULL,
	PRIMARY KEY (skill_id, version, number));
CREATE INDEX strikes_content_hash ON strikes (content_hash);
CREATE TABLE strike_deprecations (
	skill_id TEXT NOT NULL, version TEXT NOT NULL, content_hash TEXT NOT NULL, at TEXT NOT NULL, by_actor TEXT NOT NULL,
	numbers TEXT NOT NULL, final_type TEXT NOT NULL, final_reason TEXT NOT NULL,
	PRIMARY KEY (skill_id, version))`},
	sqldb.ChainMigration(2, AuditTable),
}

// Store is a strikes.Store on a sqldb.DB.
type Store struct {
	db    *sqldb.DB
	chain *sqldb.Chain
}

var _ strikes.Store = (*Store)(nil)

// New applies the strike store's migrations to db (a no-op when they are in
// force) and returns the store. key signs the audit chain: at least 32 bytes,
// and the same key on every start, or Verify fails.
func New(ctx context.Context, db *sqldb.DB, key []byte) (*Store, error) {
	chain, err := sqldb.NewChain(AuditTable, key)
	if err != nil {
		return nil, err
	}
	if _, err := db.Migrate(ctx, Component, Migrations); err != nil {
		return nil, err
	}
	return &Store{db: db, chain: chain}, nil
}

// lockKey serialises strike updates on PostgreSQL; SQLite's write
// transactions are serialised already.
const lockKey = 0x7374_7269_6b65 // "strike"

const columns = "skill_id, version, content_hash, number, type, exception_type, message, exception_hash, execution_id, session_id, container_id, occurred_at, expires_at, status, signature"

// Update implements strikes.Store.
func (s *Store) Update(ctx context.Context, skill strikes.Skill, fn func(strikes.State) (strikes.Change, error)) error {
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		if s.db.Dialect() == sqldb.Postgres {
			if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey); err != nil {
				return err
			}
		}
		st, err := s.state(ctx, tx, skill)
		if err != nil {
			return err
		}
		ch, err := fn(st)
		if err != nil {
			return err
		}
		return s.apply(ctx, tx, skill, ch)
	})
}

func (s *Store) apply(ctx context.Context, tx *sql.Tx, skill strikes.Skill, ch strikes.Change) error {
	q := s.db.Rebind
	for _, c := range ch.Statuses {
		if _, err := tx.ExecContext(ctx, q("UPDATE strikes SET status = ? WHERE skill_id = ? AND version = ? AND number = ?"),
			string(c.Status), c.SkillID, c.Version, c.Number); err != nil {
			return err
		}
	}
	if a := ch.Add; a != nil {
		exp := ""
		if !a.ExpiresAt.IsZero() {
			exp = a.ExpiresAt.UTC().Format(timeFormat)
		}
		if _, err := tx.ExecContext(ctx, q("INSERT INTO strikes ("+columns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
			a.Skill.ID, a.Skill.Version, a.Skill.Hash, a.Number, string(a.Type), a.ExceptionType, a.Message, a.ExceptionHash,
			a.ExecutionID, a.SessionID, a.ContainerID, a.OccurredAt.UTC().Format(timeFormat), exp, string(a.Status), a.Signature); err != nil {
			return fmt.Errorf("store strike %d of %s: %w", a.Number, a.Skill, err)
		}
	}
	if d := ch.Deprecate; d != nil {
		nums, _ := json.Marshal(d.Numbers)
		if _, err := tx.ExecContext(ctx, q("INSERT INTO strike_deprecations (skill_id, version, content_hash, at, by_actor, numbers, final_type, final_reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
			d.Skill.ID, d.Skill.Version, d.Skill.Hash, d.At.UTC().Format(timeFormat), d.By, string(nums), d.FinalType, d.FinalReason); err != nil {
			return fmt.Errorf("store the deprecation of %s: %w", d.Skill, err)
		}
	}
	for _, e := range ch.Audit {
		data, err := json.Marshal(e.Data)
		if err != nil {
			return fmt.Errorf("audit event %s: %w", e.Name, err)
		}
		if _, err := s.chain.Append(ctx, s.db, tx, sqldb.ChainEntry{Actor: e.Actor, Event: e.Name, Subject: skill.String(), Data: data}); err != nil {
			return err
		}
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func (s *Store) state(ctx context.Context, q querier, skill strikes.Skill) (strikes.State, error) {
	var st strikes.State
	ss, err := s.query(ctx, q, " WHERE (skill_id = ? AND version = ?) OR content_hash = ?", skill.ID, skill.Version, skill.Hash)
	if err != nil {
		return st, err
	}
	st.Strikes = ss
	rows, err := q.QueryContext(ctx, s.db.Rebind("SELECT content_hash, at, by_actor, numbers, final_type, final_reason FROM strike_deprecations WHERE skill_id = ? AND version = ?"), skill.ID, skill.Version)
	if err != nil {
		return st, err
	}
	defer rows.Close()
	if rows.Next() {
		d := strikes.Deprecation{Skill: skill}
		var at, nums string
		if err := rows.Scan(&d.Skill.Hash, &at, &d.By, &nums, &d.FinalType, &d.FinalReason); err != nil {
			return st, err
		}
		if d.At, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return st, fmt.Errorf("deprecation of %s: time %q: %w", skill, at, err)
		}
		if err := json.Unmarshal([]byte(nums), &d.Numbers); err != nil {
			return st, fmt.Errorf("deprecation of %s: strike numbers: %w", skill, err)
		}
		st.Deprecated = &d
	}
	return st, rows.Err()
}

func (s *Store) query(ctx context.Context, q querier, where string, args ...any) ([]strikes.Strike, error) {
	rows, err := q.QueryContext(ctx, s.db.Rebind("SELECT "+columns+" FROM strikes"+where+" ORDER BY occurred_at, skill_id, version, number"), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []strikes.Strike
	for rows.Next() {
		var k strikes.Strike
		var typ, status, occurred, expires string
		if err := rows.Scan(&k.Skill.ID, &k.Skill.Version, &k.Skill.Hash, &k.Number, &typ, &k.ExceptionType, &k.Message, &k.ExceptionHash,
			&k.ExecutionID, &k.SessionID, &k.ContainerID, &occurred, &expires, &status, &k.Signature); err != nil {
			return nil, err
		}
		k.Type, k.Status = strikes.Type(typ), strikes.Status(status)
		if k.OccurredAt, err = time.Parse(time.RFC3339Nano, occurred); err != nil {
			return nil, fmt.Errorf("strike %d of %s: occurred_at %q: %w", k.Number, k.Skill, occurred, err)
		}
		if expires != "" {
			if k.ExpiresAt, err = time.Parse(time.RFC3339Nano, expires); err != nil {
				return nil, fmt.Errorf("strike %d of %s: expires_at %q: %w", k.Number, k.Skill, expires, err)
			}
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// State implements strikes.Store.
func (s *Store) State(ctx context.Context, skill strikes.Skill) (strikes.State, error) {
	st, err := s.state(ctx, s.db, skill)
	if err != nil {
		return st, wrap("sqlstore.State", "cannot read the strikes of "+skill.String()+" from "+s.db.String(), err)
	}
	return st, nil
}

// All implements strikes.Store.
func (s *Store) All(ctx context.Context) ([]strikes.Strike, error) {
	ss, err := s.query(ctx, s.db, "")
	if err != nil {
		return nil, wrap("sqlstore.All", "cannot read the strikes from "+s.db.String(), err)
	}
	return ss, nil
}

// VerifyAudit implements strikes.Store with sqldb.Chain.Verify.
func (s *Store) VerifyAudit(ctx context.Context) (int64, error) {
	head, err := s.chain.Verify(ctx, s.db)
	return head.Entries, err
}

// Audit returns the audit entries about skill ("id@version"), or all
// entries when skill is empty, oldest first.
func (s *Store) Audit(ctx context.Context, skill string) ([]sqldb.ChainEntry, error) {
	return s.chain.Entries(ctx, s.db, skill)
}

func wrap(op, msg string, err error) error {
	if te := (*talos.Error)(nil); errors.As(err, &te) {
		return err
	}
	return talos.E(talos.CodeSkillException, op, msg, err)
}
