package ragtest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/rag"
)

// HistoryHarness opens histories for RunHistory.
type HistoryHarness struct {
	// New opens an empty history with cfg.
	New func(t *testing.T, cfg rag.HistoryConfig) rag.History
	// Advance moves the backend's clock forward by d; nil skips the expiry
	// checks (test them separately, e.g. with testing/synctest).
	Advance func(t *testing.T, d time.Duration)
}

// RunHistory runs the conformance suite every rag.History must pass.
func RunHistory(t *testing.T, h HistoryHarness) {
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

	t.Run("LastN", func(t *testing.T) {
		hist := h.New(t, rag.HistoryConfig{Limit: 3, TTL: time.Hour})
		for i := 1; i <= 5; i++ {
			if err := hist.Append(ctx, "s1", rag.Message{Role: "user", Content: fmt.Sprintf("m%d", i), At: at.Add(time.Duration(i) * time.Second)}); err != nil {
				t.Fatal(err)
			}
		}
		got, err := hist.Recent(ctx, "s1", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 3 || got[0].Content != "m3" || got[2].Content != "m5" {
			t.Fatalf("Recent = %+v, want m3..m5 oldest first", got)
		}
		if !got[2].At.Equal(at.Add(5*time.Second)) || got[2].Role != "user" {
			t.Fatalf("message fields lost: %+v", got[2])
		}
		two := mustRecent(t, hist, "s1", 2)
		if len(two) != 2 || two[0].Content != "m4" {
			t.Fatalf("Recent(2) = %+v", two)
		}
		none, err := hist.Recent(ctx, "other", 0)
		if err != nil || len(none) != 0 {
			t.Fatalf("unknown session = %v, %v", none, err)
		}
	})

	t.Run("DefaultLimitIs10", func(t *testing.T) {
		hist := h.New(t, rag.HistoryConfig{})
		for i := 0; i < 12; i++ {
			mustAppend(t, hist, "s", rag.Message{Role: "user", Content: fmt.Sprint(i), At: at})
		}
		got := mustRecent(t, hist, "s", 0)
		if len(got) != rag.DefaultHistoryLimit || got[0].Content != "2" {
			t.Fatalf("default limit kept %d messages %+v, want %d starting with \"2\"", len(got), got, rag.DefaultHistoryLimit)
		}
	})

	t.Run("SessionsAreSeparate", func(t *testing.T) {
		hist := h.New(t, rag.HistoryConfig{Limit: 5, TTL: time.Hour})
		mustAppend(t, hist, "a", rag.Message{Role: "user", Content: "for a", At: at})
		mustAppend(t, hist, "b", rag.Message{Role: "user", Content: "for b", At: at})
		if err := hist.Clear(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		a := mustRecent(t, hist, "a", 0)
		b := mustRecent(t, hist, "b", 0)
		if len(a) != 0 || len(b) != 1 || b[0].Content != "for b" {
			t.Fatalf("a=%v b=%v", a, b)
		}
	})

	t.Run("BadSession", func(t *testing.T) {
		hist := h.New(t, rag.HistoryConfig{})
		for _, s := range []string{"", "has space", string(make([]byte, rag.MaxSessionIDLen+1))} {
			if err := hist.Append(ctx, s, rag.Message{Content: "x"}); err == nil {
				t.Errorf("session %q accepted", s)
			}
		}
	})

	if h.Advance != nil {
		t.Run("TTL", func(t *testing.T) {
			hist := h.New(t, rag.HistoryConfig{Limit: 5, TTL: time.Minute})
			mustAppend(t, hist, "t", rag.Message{Role: "user", Content: "1", At: at})
			h.Advance(t, 50*time.Second)
			mustAppend(t, hist, "t", rag.Message{Role: "user", Content: "2", At: at}) // restarts the TTL
			h.Advance(t, 50*time.Second)
			if got := mustRecent(t, hist, "t", 0); len(got) != 2 {
				t.Fatalf("100 s after the first message and 50 s after the last, %d messages left, want 2", len(got))
			}
			h.Advance(t, 11*time.Second)
			if got := mustRecent(t, hist, "t", 0); len(got) != 0 {
				t.Fatalf("61 s after the last message %d messages left, want 0", len(got))
			}
		})
	}
}

// mustAppend appends m or fails the test: a suite that went on after a
// failed Append would index results that are not there.
func mustAppend(t *testing.T, h rag.History, session string, m rag.Message) {
	t.Helper()
	if err := h.Append(context.Background(), session, m); err != nil {
		t.Fatalf("Append(%q, %q): %v", session, m.Content, err)
	}
}

// mustRecent returns the session's recent messages or fails the test.
func mustRecent(t *testing.T, h rag.History, session string, n int) []rag.Message {
	t.Helper()
	got, err := h.Recent(context.Background(), session, n)
	if err != nil {
		t.Fatalf("Recent(%q, %d): %v", session, n, err)
	}
	return got
}
