package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/firewall/train"
)

// counts are flagged/total tallies of one row of a report.
type counts struct{ tp, fn, fp, tn int }

func (c *counts) add(m *train.Metrics) {
	c.tp += m.TP
	c.fn += m.FN
	c.fp += m.FP
	c.tn += m.TN
}

func pct(a, b int) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(a)/float64(b))
}

func (c counts) row(w io.Writer, name string) {
	fmt.Fprintf(w, "| %s | %d | %d | %s | %s |\n", name, c.tp+c.fn, c.fp+c.tn, pct(c.tp, c.tp+c.fn), pct(c.fp, c.fp+c.tn))
}

// evaluate scans recs with a firewall built from model (no lockdown).
func evaluate(model []byte, recs []train.Record) (*train.EvalReport, error) {
	fw, err := firewall.New(firewall.Config{Model: model, NoLockdownTrigger: true, HistorySize: -1}, nil, nil)
	if err != nil {
		return nil, err
	}
	return train.Evaluate(context.Background(), fw, recs)
}

// table prints one row per dataset of rep, then a row per group of datasets
// named by the prefix before the first "/", then the total.
func table(w io.Writer, title string, rep *train.EvalReport) {
	fmt.Fprintf(w, "\n%s\n\n| dataset | attacks | benign | recall | FPR |\n|---|---:|---:|---:|---:|\n", title)
	groups := map[string]*counts{}
	var names []string
	var all counts
	for _, ds := range rep.Datasets {
		var c counts
		c.add(rep.By[ds])
		c.row(w, ds)
		all.add(rep.By[ds])
		if i := strings.IndexByte(ds, '/'); i > 0 {
			g := ds[:i]
			if groups[g] == nil {
				groups[g] = &counts{}
				names = append(names, g)
			}
			groups[g].add(rep.By[ds])
		}
	}
	slices.Sort(names)
	for _, g := range names {
		groups[g].row(w, "**"+g+" (all)**")
	}
	all.row(w, "**all**")
}

// heldOut prints the test split's results: user prompts of dev, and tool
// outputs (benign documents and documents hiding dev's attacks).
func heldOut(w io.Writer, model []byte, dev, docs []train.Record, seed uint64) error {
	var user []train.Record
	for _, r := range dev {
		if train.SplitOf(r.ID) == train.SplitTest {
			if r.Source == "" {
				r.Source = firewall.SourceUser
			}
			user = append(user, r)
		}
	}
	rep, err := evaluate(model, user)
	if err != nil {
		return err
	}
	table(w, "User prompts, test split", rep)
	rep, err = evaluate(model, train.ToolEvalSet(dev, docs, train.SplitTest, seed))
	if err != nil {
		return err
	}
	table(w, "Tool output, test split", rep)
	return nil
}

// asTestSplit gives each record an id of the test split (its id plus the
// first suffix "#k" that hashes there), so ToolEvalSet hides every attack of
// a left-out dataset in held-out documents.
func asTestSplit(recs []train.Record) []train.Record {
	out := make([]train.Record, len(recs))
	for i, r := range recs {
		for k := 0; ; k++ {
			id := fmt.Sprintf("%s#%d", r.ID, k)
			if train.SplitOf(id) == train.SplitTest {
				r.ID = id
				break
			}
		}
		out[i] = r
	}
	return out
}

// leaveOneOut trains once without each dataset of dev and tests on all of
// it: as user prompts, and its attacks hidden in held-out tool output.
func leaveOneOut(w io.Writer, cfg train.TrainConfig, dev, docs []train.Record) error {
	var names []string
	for _, r := range dev {
		if !slices.Contains(names, r.Dataset) {
			names = append(names, r.Dataset)
		}
	}
	slices.Sort(names)
	fmt.Fprintln(w, "| left out | attacks | benign | user recall | user FPR | hidden in tool output: recall | tool FPR (test split) |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|")
	for _, name := range names {
		var rest, out []train.Record
		for _, r := range dev {
			if r.Dataset == name {
				if r.Source == "" {
					r.Source = firewall.SourceUser
				}
				out = append(out, r)
			} else {
				rest = append(rest, r)
			}
		}
		model, _, err := train.Train(cfg, rest, docs)
		if err != nil {
			return fmt.Errorf("without %s: %w", name, err)
		}
		rep, err := evaluate(model, out)
		if err != nil {
			return err
		}
		var u counts
		u.add(rep.Overall)
		tool, err := evaluate(model, train.ToolEvalSet(asTestSplit(out), docs, train.SplitTest, cfg.Seed))
		if err != nil {
			return err
		}
		var t counts
		t.add(tool.Overall)
		fmt.Fprintf(w, "| %s | %d | %d | %s | %s | %s | %s |\n", name, u.tp+u.fn, u.fp+u.tn,
			pct(u.tp, u.tp+u.fn), pct(u.fp, u.fp+u.tn), pct(t.tp, t.tp+t.fn), pct(t.fp, t.fp+t.tn))
	}
	return nil
}
