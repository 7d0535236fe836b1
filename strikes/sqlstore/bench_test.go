package sqlstore_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/sqlstore"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

// BenchmarkRecord measures recording one strike (a new skill each time, so
// no deprecation): lock, read, insert, one audit entry, commit.
func BenchmarkRecord(b *testing.B) {
	for _, d := range sqldbtest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			tr, err := strikes.New(strikes.Config{Key: key}, mustStore(b, sqldbtest.Open(b, d)), nil)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			var took []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				s := strikes.Skill{ID: fmt.Sprintf("skill_%d", i), Version: "1.0.0", Hash: strikestest.Hash('a' + byte(i%6))}
				start := time.Now()
				if _, err := tr.Record(ctx, s, strikes.Failure{Type: strikes.Exception, ExceptionType: "E", Message: "m"}); err != nil {
					b.Fatal(err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
		})
	}
}

// BenchmarkVerify10k verifies a chain of 10,000 audit entries and the
// signatures of 10,000 strikes.
func BenchmarkVerify10k(b *testing.B) {
	const n = 10000
	for _, d := range sqldbtest.Dialects {
		b.Run(string(d), func(b *testing.B) {
			db := sqldbtest.Open(b, d)
			store, err := mustStore(b, db), error(nil)
			if err != nil {
				b.Fatal(err)
			}
			tr, _ := strikes.New(strikes.Config{Key: key, Threshold: 10}, store, nil)
			fill(b, db, tr, n)
			b.ResetTimer()
			for b.Loop() {
				r, err := tr.Verify(context.Background())
				if err != nil || r.AuditEntries != n || r.Strikes != n {
					b.Fatalf("Verify = %+v, %v", r, err)
				}
			}
		})
	}
}

// fill records n strikes over n/5 skills (five each, threshold 10) through the tracker, so they are signed
// and chained exactly as in use.
func fill(b *testing.B, db *sqldb.DB, tr *strikes.Tracker, n int) {
	ctx := context.Background()
	if db.Dialect() == sqldb.SQLite {
		// synchronous=FULL costs an fsync per commit; the benchmark's
		// setup does not need durability.
		db.SetMaxOpenConns(1)
		db.ExecContext(ctx, "PRAGMA synchronous=OFF")
		defer db.ExecContext(ctx, "PRAGMA synchronous=FULL")
	}
	for i := 0; i < n; i++ {
		s := strikes.Skill{ID: fmt.Sprintf("skill_%d", i/5), Version: "1.0.0", Hash: fmt.Sprintf("%064x", i/5)}
		if _, err := tr.Record(ctx, s, strikes.Failure{Type: strikes.Exception, ExceptionType: "E", Message: fmt.Sprint(i)}); err != nil {
			b.Fatal(err)
		}
	}
}

func mustStore(b *testing.B, db *sqldb.DB) *sqlstore.Store {
	s, err := sqlstore.New(context.Background(), db, key)
	if err != nil {
		b.Fatal(err)
	}
	return s
}
