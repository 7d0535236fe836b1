package rag_test

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

func TestMemoryHistoryConformance(t *testing.T) {
	ragtest.RunHistory(t, ragtest.HistoryHarness{
		New: func(t *testing.T, cfg rag.HistoryConfig) rag.History {
			h, err := rag.NewMemoryHistory(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return h
		},
	})
}

// TestMemoryHistoryTTL checks expiry with the fake clock of synctest.
func TestMemoryHistoryTTL(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		h, _ := rag.NewMemoryHistory(rag.HistoryConfig{Limit: 5, TTL: time.Minute})
		_ = h.Append(ctx, "t", rag.Message{Role: "user", Content: "1"})
		time.Sleep(50 * time.Second)
		_ = h.Append(ctx, "t", rag.Message{Role: "user", Content: "2"})
		time.Sleep(50 * time.Second)
		if got, _ := h.Recent(ctx, "t", 0); len(got) != 2 {
			t.Fatalf("50 s after the last append: %d messages, want 2", len(got))
		}
		time.Sleep(11 * time.Second)
		if got, _ := h.Recent(ctx, "t", 0); len(got) != 0 {
			t.Fatalf("61 s after the last append: %d messages, want 0", len(got))
		}
	})
}

func TestHistoryConfigValidation(t *testing.T) {
	if _, err := rag.NewMemoryHistory(rag.HistoryConfig{Limit: -1}); err == nil {
		t.Fatal("negative limit accepted")
	}
	if _, err := rag.NewMemoryHistory(rag.HistoryConfig{TTL: time.Millisecond}); err == nil {
		t.Fatal("1 ms TTL accepted")
	}
}
