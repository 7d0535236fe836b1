package storecheck

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

func TestRecords(t *testing.T) {
	ok := rag.Record{ID: "a", Embedding: []float32{1, 0}, Metadata: rag.Metadata{"n": int64(1)}}
	if err := Records("op", 2, []rag.Record{ok}); err != nil {
		t.Fatalf("valid record refused: %v", err)
	}
	for name, c := range map[string]struct {
		recs []rag.Record
		want string
	}{
		"empty id":  {[]rag.Record{{Embedding: []float32{1, 0}}}, "id is empty"},
		"duplicate": {[]rag.Record{ok, ok}, "appears twice"},
		"dimension": {[]rag.Record{{ID: "b", Embedding: []float32{1}}}, "got 1 values, the collection holds 2"},
		"nan":       {[]rag.Record{{ID: "b", Embedding: []float32{float32(math.NaN()), 1}}}, "must be finite"},
		"zero":      {[]rag.Record{{ID: "b", Embedding: []float32{0, 0}}}, "all zeros"},
		"metadata":  {[]rag.Record{{ID: "b", Embedding: []float32{1, 0}, Metadata: rag.Metadata{"x": []int{1}}}}, `record "b"`},
	} {
		err := Records("op", 2, c.recs)
		if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want T010 containing %q", name, err, c.want)
		}
	}
}

func TestMatchAndDocuments(t *testing.T) {
	md := rag.Metadata{"type": "code"}
	if !Match(nil, md) {
		t.Error("a nil filter must match everything")
	}
	f := rag.Eq("type", "note")
	if Match(&f, md) {
		t.Error("Eq(type, note) matched type=code")
	}
	if DocumentMatcher(rag.ListOptions{}) != nil {
		t.Error("no Contains must give a nil matcher")
	}
	exact := DocumentMatcher(rag.ListOptions{Contains: "Docker"})
	fold := DocumentMatcher(rag.ListOptions{Contains: "docker (v2)", ContainsFold: true})
	if !exact("Docker restart") || exact("docker restart") {
		t.Error("Contains without fold must be case-sensitive")
	}
	if !fold("DOCKER (V2) notes") || fold("docker v2") {
		t.Error("ContainsFold must ignore case and take the substring literally")
	}
}
