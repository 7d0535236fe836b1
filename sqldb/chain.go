package sqldb

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"regexp"
	"strconv"
	"time"

	"github.com/talos-ironclad/talos"
)

// MinChainKeyLen is the shortest HMAC key NewChain accepts, in bytes.
const MinChainKeyLen = 32

// genesisHash is the previous hash of a chain's first entry.
const genesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

var tableName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// Chain is a tamper-evident, append-only audit log kept in one table. Each
// entry has a sequence number (1, 2, 3, … with no gaps), the hash of the
// entry before it, a SHA-256 hash over its own canonical encoding and an
// HMAC-SHA256 signature of that hash. Appends are serialised (an advisory
// lock on PostgreSQL, the write lock on SQLite), so two writers never chain
// to the same parent. [Chain.Verify] finds an edited, deleted, inserted or
// reordered entry; deleting entries from the end leaves a shorter valid
// chain, which a caller detects by comparing the head Verify returns with
// one it kept elsewhere.
type Chain struct {
	table string
	key   []byte
}

// ChainEntry is one entry of a Chain. The caller fills Actor, Event,
// Subject and Data; Append fills the rest.
type ChainEntry struct {
	Seq       int64           `json:"seq"`
	Time      time.Time       `json:"time"`
	Actor     string          `json:"actor"`   // who: "system", "user:alice", "orchestrator"
	Event     string          `json:"event"`   // what: "strike_recorded", "state_changed"
	Subject   string          `json:"subject"` // about what: a skill id@version
	Data      json.RawMessage `json:"data"`    // details as a JSON value; null when empty
	PrevHash  string          `json:"prev_hash"`
	Hash      string          `json:"hash"`
	Signature string          `json:"signature"`
}

// NewChain returns the chain kept in table (lower-case letters, digits and
// '_'), signed with key (at least MinChainKeyLen bytes). The table is created
// by the migration ChainMigration returns.
func NewChain(table string, key []byte) (*Chain, error) {
	var problems []error
	if !tableName.MatchString(table) {
		problems = append(problems, fmt.Errorf("table %q: want lower-case letters, digits and '_', starting with a letter, at most 63", clip(table)))
	}
	if len(key) < MinChainKeyLen {
		problems = append(problems, fmt.Errorf("key: %d bytes, want at least %d random bytes", len(key), MinChainKeyLen))
	}
	if len(problems) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, "sqldb.NewChain", errors.Join(problems...).Error(), nil)
	}
	return &Chain{table: table, key: append([]byte(nil), key...)}, nil
}

// ChainMigration returns the migration, numbered version, that creates the
// table of a chain; put it in the owning component's migration list.
func ChainMigration(version int, table string) Migration {
	cols := `(
	seq        BIGINT PRIMARY KEY,
	at         TEXT NOT NULL,
	actor      TEXT NOT NULL,
	event      TEXT NOT NULL,
	subject    TEXT NOT NULL,
	data       TEXT NOT NULL,
	prev_hash  TEXT NOT NULL,
	hash       TEXT NOT NULL,
	signature  TEXT NOT NULL
)`
	return Migration{Version: version, Name: "audit chain " + table,
		SQLite: "CREATE TABLE " + table + " " + cols, Postgres: "CREATE TABLE " + table + " " + cols}
}

// Append adds e to the chain inside tx, so that the entry and the change it
// records commit or roll back together, and returns it as stored.
func (c *Chain) Append(ctx context.Context, db *DB, tx *sql.Tx, e ChainEntry) (ChainEntry, error) {
	if db.dialect == Postgres {
		if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", lockKey("chain:"+c.table)); err != nil {
			return e, err
		}
	}
	e.Seq, e.PrevHash = 1, genesisHash
	var last int64
	var lastHash string
	err := tx.QueryRowContext(ctx, "SELECT seq, hash FROM "+c.table+" ORDER BY seq DESC LIMIT 1").Scan(&last, &lastHash)
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return e, err
	default:
		e.Seq, e.PrevHash = last+1, lastHash
	}
	e.Time = time.Now().UTC()
	if len(e.Data) == 0 {
		e.Data = json.RawMessage("null")
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, e.Data); err != nil {
		return e, talos.Errorf(talos.CodeConfigInvalid, "sqldb.Chain.Append", "data of %s event \"%s\" is not valid JSON: %v", c.table, clip(e.Event), err)
	}
	e.Data = compact.Bytes()
	e.Hash, e.Signature = c.seal(e)
	_, err = tx.ExecContext(ctx, db.Rebind("INSERT INTO "+c.table+" (seq, at, actor, event, subject, data, prev_hash, hash, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"),
		e.Seq, e.Time.Format(time.RFC3339Nano), e.Actor, e.Event, e.Subject, string(e.Data), e.PrevHash, e.Hash, e.Signature)
	return e, err
}

// seal returns the hash of e's canonical encoding and its signature. The
// encoding is the netstring ("LEN:BYTES,") of each of seq (decimal), time
// (RFC 3339 UTC with nanoseconds), actor, event, subject, data (compact
// JSON) and the previous hash, in that order.
func (c *Chain) seal(e ChainEntry) (hash, sig string) {
	return c.sealWith(hmac.New(sha256.New, c.key), e)
}

// sealWith is seal with a reusable HMAC of c.key.
func (c *Chain) sealWith(m hash.Hash, e ChainEntry) (hash, sig string) {
	var arr [512]byte
	b := arr[:0]
	var num [20]byte
	b = netstring(b, strconv.AppendInt(num[:0], e.Seq, 10))
	var ts [40]byte
	b = netstring(b, e.Time.UTC().AppendFormat(ts[:0], time.RFC3339Nano))
	b = netstring(b, []byte(e.Actor))
	b = netstring(b, []byte(e.Event))
	b = netstring(b, []byte(e.Subject))
	b = netstring(b, e.Data)
	b = netstring(b, []byte(e.PrevHash))
	sum := sha256.Sum256(b)
	hash = hex.EncodeToString(sum[:])
	m.Reset()
	m.Write([]byte(hash))
	var out [sha256.Size]byte
	return hash, hex.EncodeToString(m.Sum(out[:0]))
}

func netstring(b, field []byte) []byte {
	b = strconv.AppendInt(b, int64(len(field)), 10)
	b = append(b, ':')
	b = append(b, field...)
	return append(b, ',')
}

// ChainHead is where a verified chain ends.
type ChainHead struct {
	Entries int64  // number of entries, which is also the last sequence number
	Hash    string // hash of the last entry; the genesis hash when empty
}

// Verify walks the whole chain in sequence order, recomputes every hash and
// signature and checks every link, and returns its head. The first bad entry
// is named in the error (code T402): a missing sequence number (deleted), a
// link to the wrong parent (reordered or inserted), or a hash or signature
// that does not match the entry's content (edited or forged).
func (c *Chain) Verify(ctx context.Context, db *DB) (ChainHead, error) {
	const op = "sqldb.Chain.Verify"
	head := ChainHead{Hash: genesisHash}
	rows, err := db.QueryContext(ctx, "SELECT seq, at, actor, event, subject, data, prev_hash, hash, signature FROM "+c.table+" ORDER BY seq")
	if err != nil {
		return head, db.wrap(op, "cannot read the audit chain "+c.table, err)
	}
	defer rows.Close()
	mac := hmac.New(sha256.New, c.key)
	bad := func(seq int64, why string) error {
		return talos.Errorf(talos.CodeBadSignature, op, "audit chain %s is broken at entry %d: %s", c.table, seq, why)
	}
	for rows.Next() {
		var e ChainEntry
		var at, data string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Event, &e.Subject, &data, &e.PrevHash, &e.Hash, &e.Signature); err != nil {
			return head, db.wrap(op, "cannot read the audit chain "+c.table, err)
		}
		e.Data = json.RawMessage(data)
		want := head.Entries + 1
		switch {
		case e.Seq != want:
			return head, bad(want, fmt.Sprintf("entry missing (the next one is %d): deleted", e.Seq))
		case e.PrevHash != head.Hash:
			return head, bad(e.Seq, "it does not link to the entry before it: reordered, inserted or its parent deleted")
		}
		if e.Time, err = time.Parse(time.RFC3339Nano, at); err != nil {
			return head, bad(e.Seq, fmt.Sprintf("time %q does not parse: edited", clip(at)))
		}
		if !json.Valid(e.Data) {
			return head, bad(e.Seq, "data is not valid JSON: edited")
		}
		hash, sig := c.sealWith(mac, e)
		switch {
		case hash != e.Hash:
			return head, bad(e.Seq, "content does not match its hash: edited")
		case !hmac.Equal([]byte(sig), []byte(e.Signature)):
			return head, bad(e.Seq, "signature does not match: forged, or signed with another key")
		}
		head = ChainHead{Entries: e.Seq, Hash: e.Hash}
	}
	if err := rows.Err(); err != nil {
		return head, db.wrap(op, "cannot read the audit chain "+c.table, err)
	}
	return head, nil
}

// Entries returns the entries of the chain about subject (all entries when
// subject is empty), oldest first, without verifying them.
func (c *Chain) Entries(ctx context.Context, db *DB, subject string) ([]ChainEntry, error) {
	q := "SELECT seq, at, actor, event, subject, data, prev_hash, hash, signature FROM " + c.table
	var args []any
	if subject != "" {
		q += " WHERE subject = ?"
		args = append(args, subject)
	}
	rows, err := db.QueryContext(ctx, db.Rebind(q+" ORDER BY seq"), args...)
	if err != nil {
		return nil, db.wrap("sqldb.Chain.Entries", "cannot read the audit chain "+c.table, err)
	}
	defer rows.Close()
	var out []ChainEntry
	for rows.Next() {
		var e ChainEntry
		var at, data string
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Event, &e.Subject, &data, &e.PrevHash, &e.Hash, &e.Signature); err != nil {
			return nil, err
		}
		e.Time, _ = time.Parse(time.RFC3339Nano, at)
		e.Data = json.RawMessage(data)
		out = append(out, e)
	}
	return out, rows.Err()
}
