package sqldb_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

var chainKey = bytes.Repeat([]byte{7}, sqldb.MinChainKeyLen)

func newChain(t *testing.T, db *sqldb.DB) *sqldb.Chain {
	t.Helper()
	if _, err := db.Migrate(context.Background(), "chaintest", []sqldb.Migration{sqldb.ChainMigration(1, "audit")}); err != nil {
		t.Fatal(err)
	}
	c, err := sqldb.NewChain("audit", chainKey)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func appendN(t *testing.T, db *sqldb.DB, c *sqldb.Chain, n int, who string) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		err := db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := c.Append(ctx, db, tx, sqldb.ChainEntry{Actor: who, Event: "tick", Subject: fmt.Sprintf("s%d", i%3),
				Data: json.RawMessage(fmt.Sprintf(`{"i": %d}`, i))})
			return err
		})
		if err != nil {
			t.Error(err)
			return
		}
	}
}

func TestChainConcurrentAppendsFormOneChain(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			dsn := sqldbtest.DSN(t, d)
			a, b := sqldbtest.OpenDSN(t, dsn), sqldbtest.OpenDSN(t, dsn)
			c := newChain(t, a)
			var wg sync.WaitGroup
			for i, db := range []*sqldb.DB{a, b, a, b} {
				wg.Add(1)
				go func() { defer wg.Done(); appendN(t, db, c, 15, fmt.Sprint("w", i)) }()
			}
			wg.Wait()
			head, err := c.Verify(context.Background(), b)
			if err != nil || head.Entries != 60 || len(head.Hash) != 64 {
				t.Fatalf("Verify = %+v, %v; want 60 entries", head, err)
			}
			es, err := c.Entries(context.Background(), a, "s1")
			if err != nil || len(es) != 20 || es[0].Subject != "s1" || string(es[0].Data) != `{"i":1}` {
				t.Errorf("Entries(s1) = %d entries, %v; first %+v", len(es), err, es)
			}
		})
	}
}

func TestChainRolledBackAppendLeavesNoEntry(t *testing.T) {
	ctx := context.Background()
	db := sqldbtest.Open(t, sqldb.SQLite)
	c := newChain(t, db)
	appendN(t, db, c, 2, "x")
	db.Tx(ctx, func(tx *sql.Tx) error {
		c.Append(ctx, db, tx, sqldb.ChainEntry{Event: "lost"})
		return errors.New("abort")
	})
	appendN(t, db, c, 1, "x")
	if head, err := c.Verify(ctx, db); err != nil || head.Entries != 3 {
		t.Errorf("Verify = %+v, %v", head, err)
	}
}

func TestChainVerifyNamesTheFirstBadEntry(t *testing.T) {
	cases := []struct {
		name, sql, want string
		key             []byte
	}{
		{"edited data", `UPDATE audit SET data = '{"i": 99}' WHERE seq = 4`, "entry 4: content does not match its hash: edited", nil},
		{"edited actor", `UPDATE audit SET actor = 'root' WHERE seq = 2`, "entry 2: content does not match", nil},
		{"edited time", `UPDATE audit SET at = 'yesterday' WHERE seq = 3`, "entry 3: time", nil},
		{"deleted", `DELETE FROM audit WHERE seq = 5`, "entry 5: entry missing (the next one is 6): deleted", nil},
		{"reordered", `UPDATE audit SET seq = 100 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = 4; UPDATE audit SET seq = 4 WHERE seq = 100`, "entry 3: it does not link", nil},
		{"re-hashed after edit", `UPDATE audit SET hash = 'ab' WHERE seq = 6`, "entry 6: content does not match", nil},
		{"other key", ``, "entry 1: signature does not match", bytes.Repeat([]byte{8}, 32)},
	}
	for _, d := range sqldbtest.Dialects {
		for _, tc := range cases {
			t.Run(string(d)+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				db := sqldbtest.Open(t, d)
				c := newChain(t, db)
				appendN(t, db, c, 8, "x")
				for _, stmt := range strings.Split(tc.sql, ";") {
					if strings.TrimSpace(stmt) == "" {
						continue
					}
					if _, err := db.ExecContext(ctx, stmt); err != nil {
						t.Fatal(err)
					}
				}
				if tc.key != nil {
					c, _ = sqldb.NewChain("audit", tc.key)
				}
				_, err := c.Verify(ctx, db)
				if !errors.Is(err, talos.ErrBadSignature) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Verify: %v\nwant T402 containing %q", err, tc.want)
				}
			})
		}
	}
}

func TestNewChainReportsEveryProblem(t *testing.T) {
	_, err := sqldb.NewChain("Bad;Table", []byte("short"))
	if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "Bad;Table") || !strings.Contains(err.Error(), "5 bytes") {
		t.Errorf("NewChain: %v", err)
	}
}
