package host_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
)

// BenchmarkDreamCycle100k runs one full maintenance cycle on a home holding
// 100,000 memories (hashembed vectors, 384 dimensions, in the embedded
// relational store) over the prune trigger of a 100,000 ceiling, and logs
// the time of each phase and the Go heap's peak. It runs only with
// TALOS_OPS_BENCH=1:
//
//	TALOS_OPS_BENCH=1 go test -run '^$' -bench DreamCycle100k -benchtime 1x ./internal/host/
func BenchmarkDreamCycle100k(b *testing.B) {
	if os.Getenv("TALOS_OPS_BENCH") != "1" {
		b.Skip("set TALOS_OPS_BENCH=1 to run the operations benchmarks (docs/benchmarks.md)")
	}
	cfg := loadConfig(&testing.T{}, nil)
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
			recs = append(recs, rag.Record{ID: fmt.Sprint("m", j), Document: doc, Embedding: emb.Vector(doc),
				Metadata: rag.Memory{Priority: rag.PriorityAuto, Source: rag.SourceUser, CreatedAt: old}.Metadata()})
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
	for b.Loop() {
		rep, err := m.RunNow(ctx, "benchmark")
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range rep.Phases {
			b.Logf("| %s | %s | %s | %v |", p.Name, p.Status, p.Duration.Round(time.Millisecond), p.Counters)
		}
		b.Logf("| whole cycle | %s | %s |", rep.Outcome, rep.Duration().Round(time.Millisecond))
	}
	close(stop)
	<-done
	b.Logf("| Go heap in use, peak | %.0f MB |", float64(peak)/1e6)
}
