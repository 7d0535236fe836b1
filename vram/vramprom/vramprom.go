package vramprom

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/talos-ironclad/talos/vram"
)

// Collector exports a vram.Mutex's Stats as Prometheus metrics. Register it on
// the registry of your choice; it never touches the global one.
type Collector struct {
	m *vram.Mutex

	state, leases, waiters, resident, cooldown  *prometheus.Desc
	grants, timeouts, refusals, loads, failures *prometheus.Desc
	unloads, kills, transitions, wait, gpuUsed  *prometheus.Desc
	gpuTotal                                    *prometheus.Desc
}

// NewCollector returns a Collector for m. Metric names start with
// "talos_vram_".
func NewCollector(m *vram.Mutex) *Collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("talos_vram_"+name, help, labels, nil)
	}
	return &Collector{
		m:           m,
		state:       d("state", "1 for the current state of the VRAM mutex, 0 for the others.", "state"),
		leases:      d("leases", "Leases currently held on the resident model."),
		waiters:     d("waiters", "Requests waiting in the queue."),
		resident:    d("resident_model", "1 for the model that is loading, resident or unloading.", "model"),
		cooldown:    d("cooldown", "1 while the post-kill cooldown blocks loads."),
		grants:      d("grants_total", "Leases granted."),
		timeouts:    d("timeouts_total", "Acquire calls that returned T100 after waiting."),
		refusals:    d("refusals_total", "Acquire calls refused, by reason.", "reason"),
		loads:       d("loads_total", "Models loaded."),
		failures:    d("load_failures_total", "Loads that failed or timed out."),
		unloads:     d("unloads_total", "Unloads completed, including kills."),
		kills:       d("kills_total", "Kill ladder runs, by outcome.", "method"),
		transitions: d("transitions_total", "State transitions.", "from", "to"),
		wait:        d("wait_seconds", "Time Acquire waited for its lease."),
		gpuUsed:     d("gpu_used_bytes", "Used GPU memory at the last reading the mutex took."),
		gpuTotal:    d("gpu_total_bytes", "Total GPU memory at the last reading the mutex took."),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.state, c.leases, c.waiters, c.resident, c.cooldown, c.grants, c.timeouts,
		c.refusals, c.loads, c.failures, c.unloads, c.kills, c.transitions, c.wait, c.gpuUsed, c.gpuTotal} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	s := c.m.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	for st := vram.Idle; st <= vram.Error; st++ {
		v := 0.0
		if st == s.State {
			v = 1
		}
		gauge(c.state, v, st.String())
	}
	gauge(c.leases, float64(s.Leases))
	gauge(c.waiters, float64(s.Waiters))
	if s.Model != "" {
		gauge(c.resident, 1, s.Model)
	}
	cd := 0.0
	if !s.CooldownUntil.IsZero() {
		cd = 1
	}
	gauge(c.cooldown, cd)
	counter(c.grants, s.Grants)
	counter(c.timeouts, s.Timeouts)
	for r, v := range s.Refusals {
		counter(c.refusals, v, r)
	}
	counter(c.loads, s.Loads)
	counter(c.failures, s.LoadFailures)
	counter(c.unloads, s.Unloads)
	for k, v := range s.Kills {
		counter(c.kills, v, string(k))
	}
	for t, v := range s.Transitions {
		counter(c.transitions, v, t.From.String(), t.To.String())
	}
	bounds := vram.WaitBuckets()
	buckets := make(map[float64]uint64, len(bounds))
	var cum uint64
	for i, ub := range bounds {
		cum += s.Wait.Counts[i]
		buckets[ub] = cum
	}
	ch <- prometheus.MustNewConstHistogram(c.wait, s.Wait.Count, s.Wait.Sum, buckets)
	if s.LastReading != nil {
		gauge(c.gpuUsed, float64(s.LastReading.Used))
		gauge(c.gpuTotal, float64(s.LastReading.Total))
	}
}
