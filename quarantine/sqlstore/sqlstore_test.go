package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
	"github.com/talos-ironclad/talos/quarantine/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

var auditKey = bytes.Repeat([]byte{9}, sqldb.MinChainKeyLen)

func TestConformance(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			quarantinetest.RunStore(t, func(t *testing.T) quarantine.Store {
				s, err := sqlstore.New(context.Background(), sqldbtest.Open(t, d), auditKey)
				if err != nil {
					t.Fatal(err)
				}
				return s
			})
		})
	}
}

func TestVerifyDetectsEditedDeletedAndReorderedRows(t *testing.T) {
	ctx := context.Background()
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			for name, attack := range map[string]string{
				"edited":    "UPDATE quarantine_audit SET actor = 'user:mallory' WHERE seq = 2",
				"deleted":   "DELETE FROM quarantine_audit WHERE seq = 2",
				"reordered": "UPDATE quarantine_audit SET seq = 100 WHERE seq = 2; UPDATE quarantine_audit SET seq = 2 WHERE seq = 3; UPDATE quarantine_audit SET seq = 3 WHERE seq = 100",
			} {
				t.Run(name, func(t *testing.T) {
					db := sqldbtest.Open(t, d)
					s, err := sqlstore.New(ctx, db, auditKey)
					if err != nil {
						t.Fatal(err)
					}
					for i, id := range []string{"one", "two", "three", "four"} {
						r := quarantinetest.SampleRecord(id, "1.0.0", i)
						if err := s.Create(ctx, r, quarantine.AuditEntry{Actor: "system", Event: "added", To: r.State}); err != nil {
							t.Fatal(err)
						}
					}
					if _, err := s.Verify(ctx); err != nil {
						t.Fatal(err)
					}
					for _, stmt := range strings.Split(attack, ";") {
						if _, err := db.ExecContext(ctx, stmt); err != nil {
							t.Fatal(err)
						}
					}
					_, err = s.Verify(ctx)
					if !errors.Is(err, talos.ErrBadSignature) || !strings.Contains(err.Error(), "entry 2") {
						t.Fatalf("Verify after the row was %s: %v", name, err)
					}
				})
			}
		})
	}
}

func TestNewRefusesAShortKey(t *testing.T) {
	_, err := sqlstore.New(context.Background(), sqldbtest.Open(t, sqldb.SQLite), []byte("short"))
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("New with a 5-byte key: %v", err)
	}
}

func TestMain(m *testing.M) { os.Exit(m.Run()) }
