package vramprom_test

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramprom"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// newMutex is a mutex over fake GPU (24 GiB, 1 GiB used) and runtime with
// the models coder (5 GiB, needs 7 free) and vision (7 GiB, needs 9 free).
func newMutex(t *testing.T) *vram.Mutex {
	t.Helper()
	gpu := vramtest.NewGPU(24 * vram.GiB)
	gpu.SetUsed(1 * vram.GiB)
	procs := vramtest.NewProcesses()
	rt := vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB, "vision": 7 * vram.GiB}, gpu, procs)
	m, err := vram.New(vram.Config{Models: map[string]vram.Model{
		"coder":  {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB},
		"vision": {MinFree: 9 * vram.GiB, Size: 7 * vram.GiB},
	}}, rt, gpu, rt, procs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func mustAcquire(t *testing.T, m *vram.Mutex, model string) *vram.Lease {
	t.Helper()
	l, err := m.Acquire(context.Background(), model)
	if err != nil {
		t.Fatalf("Acquire(%q): %v", model, err)
	}
	return l
}

type result struct {
	l   *vram.Lease
	err error
}

func acquireAsync(m *vram.Mutex, model string) <-chan result {
	ch := make(chan result, 1)
	go func() {
		l, err := m.Acquire(context.Background(), model)
		ch <- result{l, err}
	}()
	return ch
}

func TestCollector(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := newMutex(t)
		l := mustAcquire(t, m, "coder")
		ch := acquireAsync(m, "vision")
		time.Sleep(2 * time.Second)
		synctest.Wait()

		reg := prometheus.NewPedanticRegistry()
		if err := reg.Register(vramprom.NewCollector(m)); err != nil {
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

func ExampleNewCollector() {
	gpu := vramtest.NewGPU(8 * vram.GiB)
	rt := vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB}, gpu, nil)
	m, _ := vram.New(vram.Config{Models: map[string]vram.Model{"coder": {MinFree: 6 * vram.GiB, Size: 5 * vram.GiB}}},
		rt, gpu, rt, nil)
	defer m.Close()
	reg := prometheus.NewRegistry()
	_ = reg.Register(vramprom.NewCollector(m))
	mfs, _ := reg.Gather()
	v, _ := metricValue(mfs, "talos_vram_state", map[string]string{"state": "idle"})
	fmt.Println("talos_vram_state{state=\"idle\"}", v)
	// Output: talos_vram_state{state="idle"} 1
}
