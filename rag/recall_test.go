package rag_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
	"github.com/talos-ironclad/talos/rag/ragtest"
	"github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
)

// recallSet is rag/testdata/recall.json: operator notes, questions
// paraphrasing what one note answers, and questions no note answers.
type recallSet struct {
	Memories []struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"memories"`
	Questions []struct {
		Q    string `json:"q"`
		Want string `json:"want"`
	} `json:"questions"`
	Unrelated []string `json:"unrelated"`
}

func loadRecall(t *testing.T, store rag.Store, emb *hashembed.Embedder) recallSet {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "recall.json"))
	if err != nil {
		t.Fatal(err)
	}
	var set recallSet
	if err := json.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Memories) < 30 || len(set.Questions) < 30 {
		t.Fatalf("recall set has %d memories and %d questions, want a few dozen", len(set.Memories), len(set.Questions))
	}
	for _, m := range set.Memories {
		if err := store.Upsert(context.Background(), []rag.Record{{ID: m.ID, Document: m.Text, Embedding: emb.Vector(m.Text)}}); err != nil {
			t.Fatal(err)
		}
	}
	return set
}

// TestRecallOfOperatorNotes pins what the default setup (rag/sqlstore with
// its keyword search, rag/hashembed with its own threshold) finds: the note
// answering each paraphrased question, first; nothing for a question no
// note answers.
func TestRecallOfOperatorNotes(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.Open(ctx, db, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := hashembed.New(hashembed.Config{})
	set := loadRecall(t, store, emb)
	r, err := rag.NewRetriever(rag.RetrieverConfig{}, store, emb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r.Threshold() != hashembed.DefaultThreshold {
		t.Fatalf("threshold %v, want hashembed's %v", r.Threshold(), hashembed.DefaultThreshold)
	}
	others := 0
	for _, q := range set.Questions {
		res, err := r.Retrieve(ctx, rag.Query{Text: q.Q})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) == 0 || res.Items[0].ID != q.Want {
			var got []string
			for _, it := range res.Items {
				got = append(got, it.ID)
			}
			t.Errorf("%q found %v, want %s first", q.Q, got, q.Want)
			continue
		}
		others += len(res.Items) - 1
	}
	t.Logf("%d questions: each found its note first; %d other notes came along", len(set.Questions), others)
	// Precision: few other notes come along (9 when calibrated).
	if others > 2*len(set.Questions)/3 {
		t.Errorf("%d other notes returned over %d questions; the threshold lets too much through", others, len(set.Questions))
	}
	for _, q := range set.Unrelated {
		res, err := r.Retrieve(ctx, rag.Query{Text: q})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Items) != 0 {
			t.Errorf("%q (no note answers it) found %d notes, first %q", q, len(res.Items), res.Items[0].Text)
		}
	}
}

// The example: with the spec's 0.7 and vectors alone the note is
// not found; the embedder's threshold and the keyword search find it.
func TestPasswordRotationIsFound(t *testing.T) {
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.Open(ctx, db, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	emb, _ := hashembed.New(hashembed.Config{})
	note := "The staging database password rotates every Tuesday at noon."
	if err := store.Upsert(ctx, []rag.Record{{ID: "rot", Document: note, Embedding: emb.Vector(note)},
		{ID: "wifi", Document: "The office Wi-Fi guest network password changes monthly.", Embedding: emb.Vector("The office Wi-Fi guest network password changes monthly.")}}); err != nil {
		t.Fatal(err)
	}
	q := rag.Query{Text: "when does the database password rotate"}
	spec, _ := rag.NewRetriever(rag.RetrieverConfig{Threshold: rag.DefaultThreshold, KeywordThreshold: -1}, store, emb, nil, nil)
	if res, _ := spec.Retrieve(ctx, q); len(res.Items) != 0 {
		t.Fatalf("with 0.7 and no keyword search: %+v (the test no longer shows the defect)", res.Items)
	}
	r, _ := rag.NewRetriever(rag.RetrieverConfig{}, store, emb, nil, nil)
	res, err := r.Retrieve(ctx, q)
	if err != nil || len(res.Items) == 0 || res.Items[0].ID != "rot" {
		t.Fatalf("Retrieve = %v, %+v; want the rotation note first", err, res)
	}
}

// A memory sharing the question's words but far from it for the embedder
// is found through the store's keyword search, and only through it.
func TestKeywordCandidatesAreMergedBeforeMMR(t *testing.T) {
	ctx := context.Background()
	emb, _ := hashembed.New(hashembed.Config{})
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	withWords, err := sqlstore.Open(ctx, db, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	vectorsOnly := ragtest.NewMemoryStore(hashembed.DefaultDimension) // no KeywordSearch
	loadRecall(t, withWords, emb)
	loadRecall(t, vectorsOnly, emb)
	q := rag.Query{Text: "how long do we keep production backups", TopK: 3} // m02, cosine 0.13
	for _, tc := range []struct {
		name  string
		store rag.Store
		found bool
	}{{"keyword searcher", withWords, true}, {"vectors only", vectorsOnly, false}} {
		r, _ := rag.NewRetriever(rag.RetrieverConfig{}, tc.store, emb, nil, nil)
		res, err := r.Retrieve(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, it := range res.Items {
			if it.ID == "m02" {
				found = true
				if it.Similarity > 0.2 {
					t.Errorf("%s: m02 similarity %v; the test wants a note the vectors miss", tc.name, it.Similarity)
				}
			}
		}
		if found != tc.found {
			t.Errorf("%s: m02 found = %v, want %v (%+v)", tc.name, found, tc.found, res.Items)
		}
	}
}

// The threshold follows the embedder: hashembed's calibrated value, the
// spec's 0.7 for an embedder that gives none, the configured one when set.
func TestThresholdFollowsTheEmbedder(t *testing.T) {
	emb, _ := hashembed.New(hashembed.Config{Dimension: 8})
	store := ragtest.NewMemoryStore(8)
	for _, tc := range []struct {
		emb  rag.Embedder
		cfg  float64
		want float64
	}{
		{emb, 0, hashembed.DefaultThreshold},
		{plainEmbedder{emb}, 0, rag.DefaultThreshold},
		{emb, 0.5, 0.5},
		{emb, -1, -1},
	} {
		r, err := rag.NewRetriever(rag.RetrieverConfig{Threshold: tc.cfg}, store, tc.emb, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if r.Threshold() != tc.want {
			t.Errorf("%s with Threshold %v: %v, want %v", tc.emb.Name(), tc.cfg, r.Threshold(), tc.want)
		}
	}
	if got := rag.ThresholdFor(plainEmbedder{emb}); got != rag.DefaultThreshold {
		t.Errorf("ThresholdFor(no threshold) = %v", got)
	}
}

// plainEmbedder hides the wrapped embedder's SimilarityThreshold.
type plainEmbedder struct{ rag.Embedder }

// When the embedder fails, the keyword fallback of a KeywordSearcher store
// uses its word index (no List scan over every document) and finds the note.
func TestKeywordFallbackUsesTheWordIndex(t *testing.T) {
	ctx := context.Background()
	emb, _ := hashembed.New(hashembed.Config{})
	db, err := sqldb.Open(ctx, filepath.Join(t.TempDir(), "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := sqlstore.Open(ctx, db, sqlstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	loadRecall(t, s, emb)
	store := &noListStore{Store: s}
	r, _ := rag.NewRetriever(rag.RetrieverConfig{}, store, failingEmbedder{emb}, nil, nil)
	res, err := r.Retrieve(ctx, rag.Query{Text: "when does the database password rotate"})
	if err != nil || res.Strategy != rag.StrategyKeyword || len(res.Items) == 0 || res.Items[0].ID != "m01" {
		t.Fatalf("Retrieve = %v %+v", err, res)
	}
	if store.lists != 0 {
		t.Fatalf("the fallback listed documents %d times", store.lists)
	}
}

// noListStore counts List calls on a sqlstore.Store.
type noListStore struct {
	*sqlstore.Store
	lists int
}

func (s *noListStore) List(ctx context.Context, o rag.ListOptions) ([]rag.Record, error) {
	s.lists++
	return s.Store.List(ctx, o)
}

// failingEmbedder fails every Embed, as an embedding server that is down.
type failingEmbedder struct{ *hashembed.Embedder }

func (failingEmbedder) Embed(context.Context, []string) ([][]float32, error) {
	return nil, errors.New("embedding server down")
}
