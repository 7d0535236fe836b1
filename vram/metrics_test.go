package vram_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/talos-ironclad/talos/vram"
)

func TestCollector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l := mustAcquire(t, f.m, coder)
		ch := acquireAsync(f.m, vision)
		time.Sleep(2 * time.Second)
		synctest.Wait()

		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(vram.NewCollector(f.m)); err != nil {
			t.Fatal(err)
		}
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name   string
			labels map[string]string
			want   float64
		}{
			{"talos_vram_leases", nil, 1},
			{"talos_vram_waiters", nil, 1},
			{"talos_vram_resident_model", map[string]string{"model": "coder"}, 1},
			{"talos_vram_state", map[string]string{"state": "ready"}, 1},
			{"talos_vram_state", map[string]string{"state": "idle"}, 0},
			{"talos_vram_transitions_total", map[string]string{"from": "idle", "to": "loading"}, 1},
			{"talos_vram_transitions_total", map[string]string{"from": "loading", "to": "ready"}, 1},
			{"talos_vram_grants_total", nil, 1},
			{"talos_vram_gpu_used_bytes", nil, float64(6 * vram.GiB)}, // read after the load: 1 GiB + coder
			{"talos_vram_gpu_total_bytes", nil, float64(24 * vram.GiB)},
			{"talos_vram_cooldown", nil, 0},
		} {
			got, ok := metricValue(mfs, c.name, c.labels)
			if !ok || got != c.want {
				t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
			}
		}
		l.Release()
		r := <-ch
		r.l.Release()
		// The vision request waited 2 s: the histogram has it in the 2.5 s bucket.
		mfs, err = reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "talos_vram_wait_seconds" {
				continue
			}
			h := mf.GetMetric()[0].GetHistogram()
			if h.GetSampleCount() != 2 || h.GetSampleSum() < 2 {
				t.Fatalf("wait histogram count %d sum %v, want 2 waits summing ≥ 2 s", h.GetSampleCount(), h.GetSampleSum())
			}
			for _, b := range h.GetBucket() {
				if b.GetUpperBound() == 1 && b.GetCumulativeCount() != 1 || b.GetUpperBound() == 2.5 && b.GetCumulativeCount() != 2 {
					t.Fatalf("bucket ≤%v has %d", b.GetUpperBound(), b.GetCumulativeCount())
				}
			}
			return
		}
		t.Fatal("no talos_vram_wait_seconds metric")
	})
}

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

// metricValue finds the gauge or counter name{labels} in mfs.
func metricValue(mfs []*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			if len(m.GetLabel()) != len(labels) {
				continue
			}
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue(), true
			}
			return m.GetCounter().GetValue(), true
		}
	}
	return 0, false
}
