package orchestrator_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chromem"
	"github.com/talos-ironclad/talos/rag/hashembed"
	"github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
)

// BenchmarkTurn is the loop's own overhead per turn: a zero-latency
// scripted model that calls one tool, the real firewall (user text, tool
// result, answer), 10,000 memories in an embedded store (the relational
// store the daemon uses by default, SQLite, and chromem), history in
// memory. It reports the p50 and p99 of the turns.
func BenchmarkTurn(b *testing.B) {
	ctx := context.Background()
	emb, _ := hashembed.New(hashembed.Config{})
	store, err := chromem.Open(chromem.Config{Path: b.TempDir(), Dimension: emb.Dimension()})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	const n = 10000
	texts := make([]string, n)
	for i := range texts {
		texts[i] = fmt.Sprintf("memory %d: the user mentioned project %d, city %d and a preference for option %d", i, i%97, i%31, i%7)
	}
	vecs, _ := emb.Embed(ctx, texts)
	recs := make([]rag.Record, n)
	for i := range recs {
		recs[i] = rag.Record{ID: fmt.Sprintf("m%05d", i), Document: texts[i], Embedding: vecs[i],
			Metadata: rag.Memory{Source: rag.SourceUser, Trusted: i%2 == 0, CreatedAt: time.Now()}.Metadata()}
	}
	for i := 0; i < n; i += 500 {
		if err := store.Upsert(ctx, recs[i:i+500]); err != nil {
			b.Fatal(err)
		}
	}
	db, err := sqldb.Open(ctx, filepath.Join(b.TempDir(), "talos.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sqls, err := sqlstore.Open(ctx, db, sqlstore.Config{Dimension: emb.Dimension()})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 500 {
		if err := sqls.Upsert(ctx, recs[i:i+500]); err != nil {
			b.Fatal(err)
		}
	}
	history, _ := rag.NewMemoryHistory(rag.HistoryConfig{})
	// Threshold -1: every top-k memory reaches the prompt.
	ret, err := rag.NewRetriever(rag.RetrieverConfig{Capacity: 100000, Threshold: -1}, store, emb, history, nil)
	if err != nil {
		b.Fatal(err)
	}
	local := llmtest.NewFake("qwen")
	router, _ := llm.NewRouter(llm.RouterConfig{}, local, nil, nil)
	fw, _ := firewall.New(firewall.Config{}, nil, nil)
	tools := &fakeTools{results: map[string]orchestrator.ToolResult{"weather": {Text: "Lisbon: 24 °C, clear sky, light wind from the north-west."}}}
	b.Run("memories=10000", func(b *testing.B) {
		benchTurns(b, local, orchestrator.Deps{Router: router, Firewall: fw, History: history, Memory: ret, Tools: tools})
	})
	sqlret, err := rag.NewRetriever(rag.RetrieverConfig{Capacity: 100000, Threshold: -1}, sqls, emb, history, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("memories=10000-sql", func(b *testing.B) {
		benchTurns(b, local, orchestrator.Deps{Router: router, Firewall: fw, History: history, Memory: sqlret, Tools: tools})
	})
	// The loop alone: firewall, history, tool call, leak check, audit.
	b.Run("memories=none", func(b *testing.B) {
		benchTurns(b, local, orchestrator.Deps{Router: router, Firewall: fw, History: history, Tools: tools})
	})
}

func benchTurns(b *testing.B, local *llmtest.Fake, deps orchestrator.Deps) {
	ctx := context.Background()
	o, err := orchestrator.New(orchestrator.Config{NoWriteBack: true}, deps)
	if err != nil {
		b.Fatal(err)
	}
	times := make([]time.Duration, 0, b.N)
	for b.Loop() {
		local.Push(llmtest.Reply{ToolCalls: []llm.ToolCall{{ID: "c", Name: "weather"}}}, llmtest.Reply{Text: "It is 24 °C and clear in Lisbon."})
		began := time.Now()
		rep, err := o.Chat(ctx, orchestrator.Turn{Message: "What did I say about project 42 and the weather in my city?"})
		times = append(times, time.Since(began))
		if err != nil || rep.Outcome != orchestrator.OutcomeAnswered || (deps.Memory != nil) != (rep.Memories > 0) || len(rep.Tools) != 1 {
			b.Fatalf("%+v %v", rep, err)
		}
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}
