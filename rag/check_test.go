package rag_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

// Remember refuses bad input, naming every problem, and stores nothing.
func TestRememberRefusesBadInput(t *testing.T) {
	ctx := context.Background()
	emb, _ := hashembed.New(hashembed.Config{Dimension: 64})
	store := ragtest.NewMemoryStore(64)
	r, err := rag.NewRetriever(rag.RetrieverConfig{}, store, emb, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name string
		text string
		m    rag.Memory
		want []string
	}{
		{"empty", " \n", rag.Memory{}, []string{"empty"}},
		{"too big", strings.Repeat("é", rag.MaxMemoryBytes/2+1), rag.Memory{}, []string{"16386 bytes", "at most 16384"}},
		{"not UTF-8", "ok \xff\xfe", rag.Memory{}, []string{"not UTF-8", `\xff`}},
		{"trusted web", "x", rag.Memory{Source: rag.SourceWeb, Trusted: true}, []string{`trusted with source "web"`}},
		{"trusted tool", "x", rag.Memory{Source: rag.SourceTool, Trusted: true}, []string{`source "tool"`}},
		{"trusted skill", "x", rag.Memory{Source: rag.SourceSkill, Trusted: true}, []string{`source "skill"`}},
		{"trusted, no source", "x", rag.Memory{Trusted: true}, []string{`source ""`}},
		{"future", "x", rag.Memory{CreatedAt: now.Add(time.Hour)}, []string{"in the future"}},
		{"all at once", strings.Repeat("x", rag.MaxMemoryBytes+1), rag.Memory{Source: rag.SourceWeb, Trusted: true, CreatedAt: now.Add(time.Hour)},
			[]string{"at most 16384", "trusted with source", "in the future"}},
	} {
		_, err := r.Remember(ctx, "", tc.text, tc.m)
		if !errors.Is(err, talos.ErrInputInvalid) {
			t.Errorf("%s: %v, want T015", tc.name, err)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %v lacks %q", tc.name, err, w)
			}
		}
	}
	if n, _ := store.Count(ctx); n != 0 {
		t.Fatalf("%d refused memories stored", n)
	}
	for _, m := range []rag.Memory{{Source: rag.SourceUser, Trusted: true}, {Source: rag.SourceModel, Trusted: true}, {Source: rag.SourceWeb}, {CreatedAt: now.Add(-time.Hour)}} {
		if _, err := r.Remember(ctx, "", strings.Repeat("z", rag.MaxMemoryBytes), m); err != nil {
			t.Errorf("Remember(%+v) = %v", m, err)
		}
	}
}
