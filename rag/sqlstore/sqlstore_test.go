package sqlstore_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
	"github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

func open(t testing.TB, db *sqldb.DB, dim int) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), db, sqlstore.Config{Dimension: dim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ragtest.RunStore(t, func(t *testing.T, dim int) rag.Store { return open(t, sqldbtest.Open(t, d), dim) })
		})
	}
}

func TestReopenKeepsEverythingAndChecksTheDimension(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			dsn := sqldbtest.DSN(t, d)
			s := open(t, sqldbtest.OpenDSN(t, dsn), 8)
			recs := []rag.Record{
				{ID: "a", Document: "alpha", Embedding: ragtest.Unit(8, 0, 1, 0.2), Metadata: rag.Metadata{"n": int64(2), "f": 2.0, "ok": true, "s": "x"}},
				{ID: "b", Document: "beta", Embedding: ragtest.Unit(8, 3, 1, 0.2)},
			}
			if err := s.Upsert(ctx, recs); err != nil {
				t.Fatal(err)
			}
			if err := s.UpdateMetadata(ctx, map[string]rag.Metadata{"a": {"priority": "permanent"}}); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete(ctx, []string{"b"}); err != nil {
				t.Fatal(err)
			}
			again := open(t, sqldbtest.OpenDSN(t, dsn), 8)
			got, _ := again.Get(ctx, []string{"a", "b"})
			if len(got) != 1 || got[0].Metadata["priority"] != "permanent" || got[0].Metadata["f"] != 2.0 || got[0].Metadata["n"] != int64(2) {
				t.Fatalf("after reopen: %+v", got)
			}
			_, err := sqlstore.Open(ctx, sqldbtest.OpenDSN(t, dsn), sqlstore.Config{Dimension: 16})
			if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "holds 8-dimensional embeddings, but the embedder makes 16") {
				t.Errorf("other dimension: %v", err)
			}
		})
	}
}

// TestDamagedRowIsSkippedAndNamed: a row spoiled behind the store's back
// costs that row only.
func TestDamagedRowIsSkippedAndNamed(t *testing.T) {
	ctx := context.Background()
	dsn := sqldbtest.DSN(t, sqldb.SQLite)
	db := sqldbtest.OpenDSN(t, dsn)
	s := open(t, db, 8)
	for i := 0; i < 5; i++ {
		if err := s.Upsert(ctx, []rag.Record{{ID: fmt.Sprint("m", i), Document: "memory", Embedding: ragtest.Unit(8, i, i+1, 0.1)}}); err != nil {
			t.Fatal(err)
		}
	}
	db.ExecContext(ctx, "UPDATE rag_records SET embedding = x'0000' WHERE id = 'm1'")
	db.ExecContext(ctx, "UPDATE rag_records SET metadata = '{not json' WHERE id = 'm3'")
	again := open(t, sqldbtest.OpenDSN(t, dsn), 8)
	if n, _ := again.Count(ctx); n != 3 {
		t.Errorf("Count = %d, want the 3 intact records", n)
	}
	if got := fmt.Sprint(again.Damaged()); got != "[m1 m3]" && got != "[m3 m1]" {
		t.Errorf("Damaged = %s, want m1 and m3", got)
	}
}

func TestKeywordSearchFindsSharedWords(t *testing.T) {
	ctx := context.Background()
	s := open(t, sqldbtest.Open(t, sqldb.SQLite), 8)
	docs := map[string]string{
		"pw":     "The staging database password rotates every Tuesday at noon.",
		"backup": "Backups of the database run nightly at 02:00.",
		"cat":    "The cat is called Miso.",
	}
	i := 0
	for id, doc := range docs {
		i++
		if err := s.Upsert(ctx, []rag.Record{{ID: id, Document: doc, Embedding: ragtest.Unit(8, i, 0, 0.1), Metadata: rag.Metadata{"source": "user"}}}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.KeywordSearch(ctx, "when does the database password rotate", 5, nil)
	if err != nil || len(got) < 2 || got[0].ID != "pw" || got[1].ID != "backup" {
		t.Fatalf("KeywordSearch = %v, %v", got, err)
	}
	if got[0].Similarity <= got[1].Similarity || got[0].Similarity > 1 {
		t.Errorf("scores %v, %v", got[0].Similarity, got[1].Similarity)
	}
	f := rag.Eq("source", "web")
	if got, _ := s.KeywordSearch(ctx, "database", 5, &f); len(got) != 0 {
		t.Errorf("filter ignored: %v", got)
	}
	s.Delete(ctx, []string{"pw"})
	if got, _ := s.KeywordSearch(ctx, "password", 5, nil); len(got) != 0 {
		t.Errorf("a deleted memory is still found: %v", got)
	}
}

// TestKillAtAnyInstantLosesNothingAcknowledged runs a child that upserts
// memories one transaction at a time and prints each id once Upsert
// returned; the child is SIGKILLed at a random moment, several times, and
// every printed id must be there, whole, after reopening.
func TestKillAtAnyInstantLosesNothingAcknowledged(t *testing.T) {
	if os.Getenv("SQLSTORE_CRASH_CHILD") != "" {
		return
	}
	dsn := sqldbtest.DSN(t, sqldb.SQLite)
	var acked []string
	for round := 0; round < 6; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKillAtAnyInstantLosesNothingAcknowledged$")
		cmd.Env = append(os.Environ(), "SQLSTORE_CRASH_CHILD="+dsn, "SQLSTORE_CRASH_ROUND="+strconv.Itoa(round))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		kill := time.AfterFunc(time.Duration(50+rand.IntN(250))*time.Millisecond, func() { cmd.Process.Signal(syscall.SIGKILL) })
		for sc.Scan() {
			if id, ok := strings.CutPrefix(sc.Text(), "ACK "); ok {
				acked = append(acked, id)
			}
		}
		kill.Stop()
		cmd.Wait()
	}
	if len(acked) == 0 {
		t.Fatal("the children acknowledged nothing before being killed")
	}
	s := open(t, sqldbtest.OpenDSN(t, dsn), 16)
	if d := s.Damaged(); len(d) != 0 {
		t.Errorf("damaged after kills: %v", d)
	}
	got, err := s.Get(context.Background(), acked)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(acked) {
		t.Fatalf("%d of %d acknowledged memories survived", len(got), len(acked))
	}
	for _, r := range got {
		if r.Document != "memory "+r.ID || len(r.Embedding) != 16 {
			t.Fatalf("memory %s came back damaged: %+v", r.ID, r)
		}
	}
	t.Logf("%d acknowledged memories over 6 kills, all intact", len(acked))
}

func TestMain(m *testing.M) {
	if dsn := os.Getenv("SQLSTORE_CRASH_CHILD"); dsn != "" {
		crashChild(dsn, os.Getenv("SQLSTORE_CRASH_ROUND"))
		return
	}
	os.Exit(m.Run())
}

func crashChild(dsn, round string) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	s, err := sqlstore.Open(ctx, db, sqlstore.Config{Dimension: 16})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		id := fmt.Sprintf("r%s-%d", round, i)
		if err := s.Upsert(ctx, []rag.Record{{ID: id, Document: "memory " + id, Embedding: ragtest.Unit(16, i, i+3, 0.4),
			Metadata: rag.Metadata{"i": int64(i)}}}); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ACK " + id)
	}
}

// The keyword index follows every upsert, replacement and delete (slots are
// reused, stale postings compacted): after each random change, searching
// any word finds exactly the memories whose text holds it.
func TestKeywordIndexFollowsChanges(t *testing.T) {
	ctx := context.Background()
	s := open(t, sqldbtest.Open(t, sqldb.SQLite), 8)
	vocab := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	r := rand.New(rand.NewPCG(3, 4))
	docs := map[string]string{}
	for step := 0; step < 600; step++ {
		id := fmt.Sprint("m", r.IntN(40))
		if r.IntN(4) == 0 {
			if err := s.Delete(ctx, []string{id}); err != nil {
				t.Fatal(err)
			}
			delete(docs, id)
		} else {
			var w []string
			for k := 0; k < 1+r.IntN(4); k++ {
				w = append(w, vocab[r.IntN(len(vocab))])
			}
			doc := strings.Join(w, " ")
			if err := s.Upsert(ctx, []rag.Record{{ID: id, Document: doc, Embedding: ragtest.Unit(8, r.IntN(8), 0, 0.1)}}); err != nil {
				t.Fatal(err)
			}
			docs[id] = doc
		}
		word := vocab[r.IntN(len(vocab))]
		want := map[string]bool{}
		for id, doc := range docs {
			if strings.Contains(" "+doc+" ", " "+word+" ") {
				want[id] = true
			}
		}
		got, err := s.KeywordSearch(ctx, word, 50, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("step %d: %q found %d memories, want %d", step, word, len(got), len(want))
		}
		for _, m := range got {
			if !want[m.ID] || m.Document != docs[m.ID] || m.Similarity != 1 {
				t.Fatalf("step %d: %q found %s %q (similarity %v)", step, word, m.ID, m.Document, m.Similarity)
			}
		}
	}
}

// Two stores on one database, as the daemon and `talos memory` are: what
// one writes, updates or deletes, the other's reads see.
func TestTwoProcessesSeeEachOthersWrites(t *testing.T) {
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			ctx := context.Background()
			dsn := sqldbtest.DSN(t, d)
			a := open(t, sqldbtest.OpenDSN(t, dsn), 8)
			b, err := sqlstore.Open(ctx, sqldbtest.OpenDSN(t, dsn), sqlstore.Config{Dimension: 8, SyncInterval: time.Nanosecond})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			if err := a.Upsert(ctx, []rag.Record{
				{ID: "x", Document: "the staging password rotates on tuesday", Embedding: ragtest.Unit(8, 1, 2, 0.1)},
				{ID: "y", Document: "backups run nightly", Embedding: ragtest.Unit(8, 3, 4, 0.1)},
			}); err != nil {
				t.Fatal(err)
			}
			if n, _ := b.Count(ctx); n != 2 {
				t.Fatalf("b sees %d memories after a's upsert, want 2", n)
			}
			if got, _ := b.KeywordSearch(ctx, "password", 5, nil); len(got) != 1 || got[0].ID != "x" {
				t.Errorf("b's keyword search: %v", got)
			}
			if err := a.UpdateMetadata(ctx, map[string]rag.Metadata{"x": {"priority": "permanent"}}); err != nil {
				t.Fatal(err)
			}
			if err := a.Delete(ctx, []string{"y"}); err != nil {
				t.Fatal(err)
			}
			got, _ := b.Get(ctx, []string{"x", "y"})
			if len(got) != 1 || got[0].Metadata["priority"] != "permanent" {
				t.Errorf("b after a's update and delete: %+v", got)
			}
			if res, _ := b.Query(ctx, ragtest.Unit(8, 3, 4, 0.1), 5, nil); len(res) != 1 || res[0].ID != "x" {
				t.Errorf("b's query still finds the deleted memory: %v", res)
			}
			// b's own write, and a sees it (a syncs every 100 ms: wait it out
			// with a fresh store instead of sleeping).
			if err := b.Upsert(ctx, []rag.Record{{ID: "z", Document: "z", Embedding: ragtest.Unit(8, 5, 6, 0.1)}}); err != nil {
				t.Fatal(err)
			}
			if n, _ := b.Count(ctx); n != 2 {
				t.Errorf("b after its own write: %d", n)
			}
			c := open(t, sqldbtest.OpenDSN(t, dsn), 8)
			if n, _ := c.Count(ctx); n != 2 {
				t.Errorf("a fresh store sees %d", n)
			}
		})
	}
}
