package breaker_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/breaker"
)

type ctxKey struct{}

// ctxStore is a MemoryStore that records the context of each call and can
// make AcquireProbe hang until its context ends.
type ctxStore struct {
	*breaker.MemoryStore
	mu      sync.Mutex
	hang    bool
	values  []any   // ctx.Value(ctxKey{}) of each Save
	errs    []error // ctx.Err() at each Save
	elapsed time.Duration
}

func (s *ctxStore) AcquireProbe(ctx context.Context, name string, period int64, probe string, max int, at time.Time, lease time.Duration) (bool, error) {
	s.mu.Lock()
	hang := s.hang
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return false, ctx.Err()
	}
	return s.MemoryStore.AcquireProbe(ctx, name, period, probe, max, at, lease)
}

func (s *ctxStore) Save(ctx context.Context, name string, r breaker.Record) error {
	s.mu.Lock()
	s.values = append(s.values, ctx.Value(ctxKey{}))
	s.errs = append(s.errs, ctx.Err())
	s.mu.Unlock()
	return s.MemoryStore.Save(ctx, name, r)
}

// ctxHandler records the ctxKey value of the context of each log line.
type ctxHandler struct {
	mu   *sync.Mutex
	seen *[]any
}

func (h ctxHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h ctxHandler) Handle(ctx context.Context, r slog.Record) error {
	h.mu.Lock()
	*h.seen = append(*h.seen, ctx.Value(ctxKey{}))
	h.mu.Unlock()
	return nil
}
func (h ctxHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h ctxHandler) WithGroup(string) slog.Handler      { return h }

// TestStoreRoundTripsTakeTheCallersContext pins that a half-open probe's
// Store round trip ends with the caller's context (not only after
// StoreTimeout), and that the round trips after a call carry the caller's
// values, not its cancellation, and so do the breaker's log lines.
func TestStoreRoundTripsTakeTheCallersContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &ctxStore{MemoryStore: breaker.NewMemoryStore()}
		var mu sync.Mutex
		var logged []any
		b, err := breaker.New(breaker.Config{Name: "ctx", OpenFor: []time.Duration{time.Minute}, StoreTimeout: 2 * time.Second,
			Logger: slog.New(ctxHandler{&mu, &logged})}, st)
		if err != nil {
			t.Fatal(err)
		}
		// A failure reported with a cancelled request context still saves
		// the open record, with the request's values.
		reqCtx, cancel := context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "req-1"))
		cancel()
		tk, err := b.AllowContext(reqCtx)
		if err != nil {
			t.Fatal(err)
		}
		tk.ReportContext(reqCtx, breaker.Verdict{Kind: breaker.Trip})
		if b.State() != breaker.Open {
			t.Fatalf("state %v, want open", b.State())
		}
		st.mu.Lock()
		if len(st.values) != 1 || st.values[0] != "req-1" || st.errs[0] != nil {
			t.Errorf("Save saw values %v, errors %v; want the request's value and a live context", st.values, st.errs)
		}
		st.mu.Unlock()
		mu.Lock()
		if len(logged) == 0 || logged[0] != "req-1" {
			t.Errorf("log lines carried %v, want the request's context", logged)
		}
		mu.Unlock()

		// Half-open: the probe's AcquireProbe hangs; the caller's deadline
		// ends it, well before StoreTimeout.
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if b.State() != breaker.HalfOpen {
			t.Fatalf("state %v, want half-open", b.State())
		}
		st.mu.Lock()
		st.hang = true
		st.mu.Unlock()
		ctx, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel2()
		start := time.Now()
		tk, _ = b.AllowContext(ctx)
		if d := time.Since(start); d != 50*time.Millisecond {
			t.Errorf("AllowContext returned after %v, want the caller's 50ms (StoreTimeout is 2s)", d)
		}
		tk.Done(nil)
	})
}
