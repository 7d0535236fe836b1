package dashboard

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// MetricsPath is the JSON endpoint of the live view: the health report and
// the daemon's metrics, read every second by the page.
const MetricsPath = "/api/metrics"

// Metric is one sample of the daemon's metrics (a gauge, a counter or an
// untyped value), as /metrics exports it.
type Metric struct {
	Name string `json:"name"`
	// Labels are the sample's labels as name="value" pairs joined with
	// commas, sorted; empty without labels.
	Labels string  `json:"labels,omitempty"`
	Value  float64 `json:"value"`
}

// MetricsView is the JSON of MetricsPath: when it was taken, the health
// report and the metric samples, each with, in its Error, why it is
// missing.
type MetricsView struct {
	Time         time.Time  `json:"time"`
	Health       HealthView `json:"health"`
	Samples      []Metric   `json:"samples"`
	MetricsError string     `json:"metrics_error,omitempty"`
}

// GatherMetrics returns a Deps.Metrics reading g (the registry /metrics
// serves): every gauge, counter and untyped sample, sorted by name and
// labels. Histograms and summaries are left out.
func GatherMetrics(g prometheus.Gatherer) func(context.Context) ([]Metric, error) {
	return func(context.Context) ([]Metric, error) {
		mfs, err := g.Gather()
		if err != nil && len(mfs) == 0 {
			return nil, err
		}
		var out []Metric
		for _, mf := range mfs {
			for _, m := range mf.GetMetric() {
				var v float64
				switch mf.GetType() {
				case dto.MetricType_GAUGE:
					v = m.GetGauge().GetValue()
				case dto.MetricType_COUNTER:
					v = m.GetCounter().GetValue()
				case dto.MetricType_UNTYPED:
					v = m.GetUntyped().GetValue()
				default:
					continue
				}
				out = append(out, Metric{Name: mf.GetName(), Labels: labels(m.GetLabel()), Value: v})
			}
		}
		sort.Slice(out, func(i, j int) bool {
			if out[i].Name != out[j].Name {
				return out[i].Name < out[j].Name
			}
			return out[i].Labels < out[j].Labels
		})
		return out, nil
	}
}

func labels(ls []*dto.LabelPair) string {
	parts := make([]string, 0, len(ls))
	for _, l := range ls {
		parts = append(parts, l.GetName()+`="`+l.GetValue()+`"`)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (d *Dashboard) serveMetrics(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.dataContext(r)
	defer cancel()
	v := MetricsView{Time: time.Now().UTC(), Samples: []Metric{}, Health: d.healthView(ctx)}
	if d.deps.Metrics == nil {
		v.MetricsError = notWired
	} else if s, err := d.deps.Metrics(ctx); err != nil {
		v.MetricsError = d.errText(err)
	} else if s != nil {
		v.Samples = s
	}
	writeJSON(w, http.StatusOK, v)
}
