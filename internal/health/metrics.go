package health

import (
	"runtime"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics exposes the health results in Prometheus form on a registry of
// its own (never the global one). Register it as an Observer of a Checker;
// other daemon metrics can be added to Registry().
type Metrics struct {
	reg      *prometheus.Registry
	up       *prometheus.GaugeVec
	status   *prometheus.GaugeVec
	latency  *prometheus.GaugeVec
	overall  prometheus.Gauge
	evals    prometheus.Counter
	statusOf map[CheckStatus]float64
}

// Metric names.
const (
	MetricCheckUp      = "talos_health_check_up"
	MetricCheckStatus  = "talos_health_check_status"
	MetricCheckLatency = "talos_health_check_latency_seconds"
	MetricStatus       = "talos_health_status"
	MetricEvaluations  = "talos_health_evaluations_total"
	MetricBuildInfo    = "talos_build_info"
)

// NewMetrics returns the metrics with a fresh registry holding the Go
// runtime and process collectors and talos_build_info{version}.
func NewMetrics(version string) *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricCheckUp,
			Help: "1 if the health check passed or only warned at its last run, 0 if it failed."}, []string{"check"}),
		status: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricCheckStatus,
			Help: "Last result of the health check: 0 ok, 1 warn, 2 fail."}, []string{"check"}),
		latency: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricCheckLatency,
			Help: "Duration of the health check's last run."}, []string{"check"}),
		overall: prometheus.NewGauge(prometheus.GaugeOpts{Name: MetricStatus,
			Help: "Overall health: 0 healthy, 1 degraded, 2 unhealthy."}),
		evals: prometheus.NewCounter(prometheus.CounterOpts{Name: MetricEvaluations,
			Help: "Number of times the health checks were evaluated."}),
		statusOf: map[CheckStatus]float64{StatusOK: 0, StatusWarn: 1, StatusFail: 2},
	}
	build := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: MetricBuildInfo,
		Help: "Build information of the running daemon; always 1."}, []string{"version", "goversion"})
	build.WithLabelValues(version, runtime.Version()).Set(1)
	m.reg.MustRegister(m.up, m.status, m.latency, m.overall, m.evals, build,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry /metrics serves.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe records one evaluation (it implements Observer).
func (m *Metrics) Observe(rep Report) {
	m.evals.Inc()
	switch rep.Status {
	case Healthy:
		m.overall.Set(0)
	case Degraded:
		m.overall.Set(1)
	default:
		m.overall.Set(2)
	}
	for name, r := range rep.Checks {
		up := 1.0
		if r.Status == StatusFail {
			up = 0
		}
		m.up.WithLabelValues(name).Set(up)
		m.status.WithLabelValues(name).Set(m.statusOf[r.Status])
		m.latency.WithLabelValues(name).Set(r.LatencyMS / 1000)
	}
}
