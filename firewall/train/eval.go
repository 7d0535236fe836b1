package train

import (
	"context"
	"math"
	"slices"
	"sort"
	"time"

	"github.com/talos-ironclad/talos/firewall"
)

// Metrics are detection results over a set of labelled records. A record is
// flagged when its verdict blocks (action block or lockdown).
type Metrics struct {
	N, TP, FP, TN, FN int
	Precision         float64
	Recall            float64
	F1                float64
	FPR               float64
	LatencyP50        time.Duration
	LatencyP99        time.Duration
	latencies         []time.Duration
}

func (m *Metrics) add(label int, flagged bool, d time.Duration) {
	m.N++
	switch {
	case label == 1 && flagged:
		m.TP++
	case label == 1:
		m.FN++
	case flagged:
		m.FP++
	default:
		m.TN++
	}
	m.latencies = append(m.latencies, d)
}

func (m *Metrics) finish() {
	ratio := func(a, b int) float64 {
		if b == 0 {
			return math.NaN()
		}
		return float64(a) / float64(b)
	}
	m.Precision = ratio(m.TP, m.TP+m.FP)
	m.Recall = ratio(m.TP, m.TP+m.FN)
	m.FPR = ratio(m.FP, m.FP+m.TN)
	if m.Precision+m.Recall > 0 {
		m.F1 = 2 * m.Precision * m.Recall / (m.Precision + m.Recall)
	} else {
		m.F1 = math.NaN()
	}
	slices.Sort(m.latencies)
	m.LatencyP50 = percentile(m.latencies, 0.50)
	m.LatencyP99 = percentile(m.latencies, 0.99)
	m.latencies = nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

// EvalReport holds metrics per dataset, per source and overall.
type EvalReport struct {
	Datasets []string // sorted
	By       map[string]*Metrics
	BySource map[firewall.Source]*Metrics
	Overall  *Metrics
}

// Evaluate scans every record (firewall.Input{Text, Source}) and compares the verdicts
// with the labels. Records without a source are scanned as untrusted. Use a
// Firewall without a Lockdown: a lockdown would stop the evaluation.
func Evaluate(ctx context.Context, fw *firewall.Firewall, recs []Record) (*EvalReport, error) {
	rep := &EvalReport{By: map[string]*Metrics{}, BySource: map[firewall.Source]*Metrics{}, Overall: &Metrics{}}
	for _, r := range recs {
		start := time.Now()
		v, err := fw.Scan(ctx, firewall.Input{Text: r.Text, Source: r.Source})
		d := time.Since(start)
		if err != nil {
			return nil, err
		}
		flagged := v.Action.Blocks()
		ds := r.Dataset
		if ds == "" {
			ds = "(none)"
		}
		if rep.By[ds] == nil {
			rep.By[ds] = &Metrics{}
			rep.Datasets = append(rep.Datasets, ds)
		}
		rep.By[ds].add(r.Label, flagged, d)
		if rep.BySource[v.Source] == nil {
			rep.BySource[v.Source] = &Metrics{}
		}
		rep.BySource[v.Source].add(r.Label, flagged, d)
		rep.Overall.add(r.Label, flagged, d)
	}
	sort.Strings(rep.Datasets)
	for _, m := range rep.By {
		m.finish()
	}
	for _, m := range rep.BySource {
		m.finish()
	}
	rep.Overall.finish()
	return rep, nil
}
