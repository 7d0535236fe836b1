package vram_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/talos-ironclad/talos/vram"
)

func TestStatsJSONRoundTrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		mustAcquire(t, f.m, coder).Release()
		s := f.m.Stats()
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"state":"ready"`) || !strings.Contains(string(b), `"used_bytes":6442450944`) /* read after the load: 1 GiB + coder's 5 GiB */ {
			t.Fatalf("JSON %s", b)
		}
		var back vram.Stats
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if back.State != vram.Ready || back.Model != coder || back.Transitions[vram.Transition{From: vram.Idle, To: vram.Loading}] != 1 {
			t.Fatalf("round trip: %+v", back)
		}
		var st vram.State
		if err := st.UnmarshalText([]byte("bogus")); err == nil {
			t.Fatal("bogus state accepted")
		}
	})
}

func BenchmarkAcquireReleaseResident(b *testing.B) {
	f := newFixture(&testing.T{}, vram.Config{})
	ctx := context.Background()
	l, err := f.m.Acquire(ctx, coder) // load once
	if err != nil {
		b.Fatal(err)
	}
	l.Release()
	b.ReportAllocs()
	for b.Loop() {
		l, err := f.m.Acquire(ctx, coder)
		if err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}

func BenchmarkAcquireReleaseResidentParallel(b *testing.B) {
	f := newFixture(&testing.T{}, vram.Config{})
	ctx := context.Background()
	l, err := f.m.Acquire(ctx, coder)
	if err != nil {
		b.Fatal(err)
	}
	l.Release()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l, err := f.m.Acquire(ctx, coder)
			if err != nil {
				b.Error(err)
				return
			}
			l.Release()
		}
	})
}
