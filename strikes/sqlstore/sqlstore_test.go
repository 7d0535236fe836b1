package sqlstore_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/sqlstore"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

var key = bytes.Repeat([]byte("k"), 32)

func open(t *testing.T, db *sqldb.DB) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.New(context.Background(), db, key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			strikestest.RunStoreTests(t, func(t *testing.T) strikes.Store { return open(t, sqldbtest.Open(t, d)) })
		})
	}
}

// TestTamperingIsFound edits the tables behind the tracker's back, as
// someone with the database file would, and checks Verify names it.
func TestTamperingIsFound(t *testing.T) {
	cases := []struct{ name, sql, want string }{
		{"downgraded type", "UPDATE strikes SET type = 'timeout' WHERE number = 1", "strike 1 of alpha@1.0.0 does not match its signature"},
		{"moved time", "UPDATE strikes SET occurred_at = '2020-01-01T00:00:00.000000000Z' WHERE number = 2", "strike 2 of alpha@1.0.0 does not match"},
		{"renumbered", "UPDATE strikes SET number = 7 WHERE number = 2", "strike 7 of alpha@1.0.0 does not match"},
		{"audit edited", "UPDATE strike_audit SET actor = 'operator:mallory' WHERE seq = 1", "strike_audit is broken at entry 1"},
		{"audit deleted", "DELETE FROM strike_audit WHERE seq = 1", "strike_audit is broken at entry 1"},
	}
	for _, d := range sqldbtest.Dialects {
		for _, tc := range cases {
			t.Run(string(d)+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				db := sqldbtest.Open(t, d)
				tr, err := strikes.New(strikes.Config{Key: key}, open(t, db), nil)
				if err != nil {
					t.Fatal(err)
				}
				skill := strikes.Skill{ID: "alpha", Version: "1.0.0", Hash: strikestest.Hash('a')}
				for i, typ := range []strikes.Type{strikes.Security, strikes.Timeout} {
					if _, err := tr.Record(ctx, skill, strikes.Failure{Type: typ, ExceptionType: "E", Message: strings.Repeat("x", i+1)}); err != nil {
						t.Fatal(err)
					}
				}
				if r, err := tr.Verify(ctx); err != nil || r.Strikes != 2 || r.AuditEntries != 2 {
					t.Fatalf("Verify before tampering = %+v, %v", r, err)
				}
				if _, err := db.ExecContext(ctx, tc.sql); err != nil {
					t.Fatal(err)
				}
				_, err = tr.Verify(ctx)
				if !errors.Is(err, talos.ErrBadSignature) || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("Verify after %s: %v\nwant T402 containing %q", tc.name, err, tc.want)
				}
			})
		}
	}
}

func TestTwoTrackersOnOneDatabaseNumberWithoutCollisions(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			dsn := sqldbtest.DSN(t, d)
			skill := strikes.Skill{ID: "alpha", Version: "1.0.0", Hash: strikestest.Hash('a')}
			var trs []*strikes.Tracker
			for i := 0; i < 2; i++ {
				tr, err := strikes.New(strikes.Config{Key: key, Threshold: 10}, open(t, sqldbtest.OpenDSN(t, dsn)), nil)
				if err != nil {
					t.Fatal(err)
				}
				trs = append(trs, tr)
			}
			done := make(chan error, 8)
			for i := 0; i < 8; i++ {
				go func() {
					_, err := trs[i%2].Record(ctx, skill, strikes.Failure{Type: strikes.Exception, ExceptionType: "ValueError", Message: "case " + string(rune('a'+i))})
					done <- err
				}()
			}
			for i := 0; i < 8; i++ {
				if err := <-done; err != nil {
					t.Error(err)
				}
			}
			act, err := trs[0].Active(ctx, skill)
			if err != nil || len(act) != 8 {
				t.Fatalf("Active = %d, %v", len(act), err)
			}
			if r, err := trs[1].Verify(ctx); err != nil || r.AuditEntries != 8 {
				t.Errorf("Verify = %+v, %v", r, err)
			}
		})
	}
}
