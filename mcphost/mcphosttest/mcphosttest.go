package mcphosttest

import (
	"context"
	"maps"
	"sync"
	"testing"

	"github.com/talos-ironclad/talos/mcphost"
)

// Recorder is an mcphost.Auditor that keeps every record. Set Err to make
// recording fail (the host then withholds the result).
type Recorder struct {
	mu   sync.Mutex
	recs []mcphost.AuditRecord
	// Err, when non-nil, is returned by every AuditCall.
	Err error
}

// AuditCall records rec and returns r.Err.
func (r *Recorder) AuditCall(_ context.Context, rec mcphost.AuditRecord) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return r.Err
}

// Records returns a copy of the records so far, oldest first.
func (r *Recorder) Records() []mcphost.AuditRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]mcphost.AuditRecord(nil), r.recs...)
}

// Scanner is an mcphost.ResultScanner with a fixed answer that keeps the
// inputs it saw.
type Scanner struct {
	mu     sync.Mutex
	inputs []mcphost.ScanInput
	// Verdict is returned for every result.
	Verdict mcphost.ScanVerdict
	// Err, when non-nil, is returned instead (the host then denies).
	Err error
}

// ScanResult records in and returns s.Verdict or s.Err.
func (s *Scanner) ScanResult(_ context.Context, in mcphost.ScanInput) (mcphost.ScanVerdict, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.inputs = append(s.inputs, in)
	if s.Err != nil {
		return mcphost.ScanVerdict{}, s.Err
	}
	return s.Verdict, nil
}

// Inputs returns a copy of the scanned inputs, oldest first.
func (s *Scanner) Inputs() []mcphost.ScanInput {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]mcphost.ScanInput(nil), s.inputs...)
}

// PinStoreConformance checks a PinStore's contract. newStore returns an
// empty store each time it is called.
func PinStoreConformance(t *testing.T, newStore func(t *testing.T) mcphost.PinStore) {
	ctx := context.Background()
	t.Run("unknown identity is not found", func(t *testing.T) {
		s := newStore(t)
		p, found, err := s.LoadPins(ctx, "stdio:x:1")
		if err != nil || found || len(p) != 0 {
			t.Fatalf("LoadPins of a new identity = %v, %v, %v; want empty, false, nil", p, found, err)
		}
	})
	t.Run("empty pins are found", func(t *testing.T) {
		s := newStore(t)
		if err := s.SavePins(ctx, "a", map[string]string{}); err != nil {
			t.Fatal(err)
		}
		p, found, err := s.LoadPins(ctx, "a")
		if err != nil || !found || len(p) != 0 {
			t.Fatalf("after saving no pins: %v, %v, %v; want empty, true, nil", p, found, err)
		}
	})
	t.Run("save replaces and identities are separate", func(t *testing.T) {
		s := newStore(t)
		if err := s.SavePins(ctx, "a", map[string]string{"read": "h1", "write": "h2"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePins(ctx, "b", map[string]string{"other": "h3"}); err != nil {
			t.Fatal(err)
		}
		if err := s.SavePins(ctx, "a", map[string]string{"read": "h4"}); err != nil {
			t.Fatal(err)
		}
		p, found, err := s.LoadPins(ctx, "a")
		if err != nil || !found || !maps.Equal(p, map[string]string{"read": "h4"}) {
			t.Fatalf("a = %v, %v, %v", p, found, err)
		}
		p, _, _ = s.LoadPins(ctx, "b")
		if !maps.Equal(p, map[string]string{"other": "h3"}) {
			t.Fatalf("b = %v", p)
		}
	})
	t.Run("maps are copies", func(t *testing.T) {
		s := newStore(t)
		in := map[string]string{"read": "h1"}
		if err := s.SavePins(ctx, "a", in); err != nil {
			t.Fatal(err)
		}
		in["read"] = "changed by the caller"
		p, _, _ := s.LoadPins(ctx, "a")
		p["read"] = "changed by a reader"
		again, _, _ := s.LoadPins(ctx, "a")
		if again["read"] != "h1" {
			t.Fatalf("the store shares its maps with callers: %v", again)
		}
	})
	t.Run("concurrent use", func(t *testing.T) {
		s := newStore(t)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				id := string(rune('a' + i))
				for range 50 {
					if err := s.SavePins(ctx, id, map[string]string{"t": id}); err != nil {
						t.Error(err)
						return
					}
					if p, _, err := s.LoadPins(ctx, id); err != nil || p["t"] != id {
						t.Errorf("%s: %v %v", id, p, err)
						return
					}
				}
			})
		}
		wg.Wait()
	})
}
