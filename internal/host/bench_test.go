package host_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
)

// BenchmarkDreamCycle100k runs one full maintenance cycle on a home holding
// 100,000 memories (hashembed vectors, 384 dimensions, in the embedded
// relational store; a tenth of them from today in groups of near-duplicates)
// over the prune trigger of a 100,000 ceiling, and logs
// the time of each phase and the Go heap's peak. It runs only with
// TALOS_OPS_BENCH=1:
//
//	TALOS_OPS_BENCH=1 go test -run '^$' -bench DreamCycle100k -benchtime 1x ./internal/host/
func BenchmarkDreamCycle100k(b *testing.B) {
	if os.Getenv("TALOS_OPS_BENCH") != "1" {
		b.Skip("set TALOS_OPS_BENCH=1 to run the operations benchmarks (docs/benchmarks.md)")
	}
	cfg := loadConfig(&testing.T{}, map[string]string{"TALOS_BACKUP_KEEP": "1"}) // the backup phase runs too
	ctx := context.Background()
	mem, err := host.OpenMemory(ctx, cfg, host.MemoryOptions{})
	if err != nil {
		b.Fatal(err)
	}
	emb, _ := hashembed.New(hashembed.Config{})
	old := time.Now().Add(-60 * 24 * time.Hour)
	const n = 100_000
	for i := 0; i < n; i += 1000 {
		var recs []rag.Record
		for j := i; j < i+1000; j++ {
			doc := fmt.Sprintf("memory %d: the operator noted something about service %d and host %d", j, j%97, j%13)
			at := old
			if j%10 == 0 {
				// A tenth from today, in about 1,300 groups of near-duplicates,
				// for the consolidation phase.
				doc = fmt.Sprintf("today the operator noted again that service %d on host %d restarts", j%97, j%13)
				at = time.Now().Add(-time.Hour)
			}
			recs = append(recs, rag.Record{ID: fmt.Sprint("m", j), Document: doc, Embedding: emb.Vector(doc),
				Metadata: rag.Memory{Priority: rag.PriorityAuto, Source: rag.SourceUser, CreatedAt: at}.Metadata()})
		}
		if err := mem.Store.Upsert(ctx, recs); err != nil {
			b.Fatal(err)
		}
	}
	mem.Close()
	m, err := host.NewMaintenance(cfg, host.MaintenanceDeps{})
	if err != nil {
		b.Fatal(err)
	}
	defer m.Close()
	var peak uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	var last *dream.Report
	for b.Loop() {
		rep, err := m.RunNow(ctx, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		last = rep
	}
	close(stop)
	<-done
	// go test keeps the first 10 lines of a benchmark's log: the summary
	// first, then the phases in one call.
	b.Logf("| whole cycle | %s | %s | Go heap in use, peak %.0f MB |", last.Outcome, last.Duration().Round(time.Millisecond), float64(peak)/1e6)
	var table strings.Builder
	for _, p := range last.Phases {
		fmt.Fprintf(&table, "\n| %s | %s | %s | %v | %s |", p.Name, p.Status, p.Duration.Round(time.Millisecond), p.Counters, p.Reason)
	}
	b.Log(table.String())
}
