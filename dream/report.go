package dream

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"
)

// Status is how one phase of a cycle ended.
type Status string

// Phase statuses.
const (
	StatusOK          Status = "ok"          // ran and returned no error
	StatusSkipped     Status = "skipped"     // ran and had nothing to do (Reason says why)
	StatusFailed      Status = "failed"      // returned an error or panicked
	StatusTimedOut    Status = "timed_out"   // its timeout or the cycle deadline cut it off
	StatusNotRun      Status = "not_run"     // never started (Reason says why)
	StatusInterrupted Status = "interrupted" // the process was shutting down; resumes next start
)

// Outcome is how a whole cycle ended.
type Outcome string

// Cycle outcomes.
const (
	OutcomeOK          Outcome = "ok"          // every phase ok or skipped
	OutcomePartial     Outcome = "partial"     // some phase failed or timed out
	OutcomeDeadline    Outcome = "deadline"    // the cycle deadline stopped it before every phase ran
	OutcomeInterrupted Outcome = "interrupted" // shut down in the middle; resumes next start
)

// PhaseReport says what one phase did in one cycle.
type PhaseReport struct {
	Name     string           `json:"name"`
	Status   Status           `json:"status"`
	Started  time.Time        `json:"started,omitzero"`
	Duration time.Duration    `json:"duration_ns"`
	Counters map[string]int64 `json:"counters,omitempty"`
	// Reason says why a phase was skipped or not run, or why it timed out.
	Reason string `json:"reason,omitempty"`
	Error  string `json:"error,omitempty"`
}

// Useful reports whether the phase did something useful: it succeeded and
// either changed something (a non-zero counter) or said why there was
// nothing to do.
func (p PhaseReport) Useful() bool {
	switch p.Status {
	case StatusSkipped:
		return true
	case StatusOK:
		if p.Reason != "" {
			return true
		}
		for _, v := range p.Counters {
			if v != 0 {
				return true
			}
		}
	}
	return false
}

func (p PhaseReport) failed() bool {
	return p.Status == StatusFailed || p.Status == StatusTimedOut || p.Status == StatusNotRun
}

// Report is the record of one cycle, written as JSON and as a readable
// summary into the state directory's reports folder.
type Report struct {
	ID       string    `json:"id"`
	Kind     Kind      `json:"kind"`
	Reason   string    `json:"reason,omitempty"`
	Window   time.Time `json:"window,omitzero"`
	Attempt  int       `json:"retry_attempt,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Outcome  Outcome   `json:"outcome"`
	// Resumed counts how often this cycle was resumed after its process
	// died.
	Resumed int           `json:"resumed,omitempty"`
	Phases  []PhaseReport `json:"phases"`
	// Next says what happens next: a retry, an escalation, nothing.
	Next string `json:"next,omitempty"`
}

// Duration is how long the cycle took (from its first start, across
// resumes).
func (r *Report) Duration() time.Duration { return r.Finished.Sub(r.Started) }

// Summary renders the report as readable text.
func (r *Report) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Dream cycle %s (%s", r.ID, r.Kind)
	if !r.Window.IsZero() {
		fmt.Fprintf(&b, ", window %s", r.Window.Format("2006-01-02 15:04 MST"))
	}
	if r.Attempt > 0 {
		fmt.Fprintf(&b, ", retry %d", r.Attempt)
	}
	if r.Reason != "" {
		fmt.Fprintf(&b, ", %s", r.Reason)
	}
	b.WriteString(")\n")
	fmt.Fprintf(&b, "Outcome: %s in %s (started %s)", r.Outcome, r.Duration().Round(time.Millisecond), r.Started.Format(time.RFC3339))
	if r.Resumed > 0 {
		fmt.Fprintf(&b, ", resumed %d time(s) after a crash", r.Resumed)
	}
	b.WriteString("\n")
	w := 0
	for _, p := range r.Phases {
		w = max(w, len(p.Name))
	}
	for _, p := range r.Phases {
		fmt.Fprintf(&b, "  %-*s  %-11s  %8s", w, p.Name, p.Status, p.Duration.Round(time.Millisecond))
		for _, k := range slices.Sorted(maps.Keys(p.Counters)) {
			fmt.Fprintf(&b, "  %s=%d", k, p.Counters[k])
		}
		if p.Reason != "" {
			fmt.Fprintf(&b, "  (%s)", oneLine(p.Reason))
		}
		if p.Error != "" {
			fmt.Fprintf(&b, "  error: %s", oneLine(p.Error))
		}
		b.WriteString("\n")
	}
	if r.Next != "" {
		fmt.Fprintf(&b, "Next: %s\n", r.Next)
	}
	return b.String()
}

// oneLine keeps a message on one line of the summary.
func oneLine(s string) string {
	return strings.Join(strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' }), "; ")
}

// writeReport stores r as <id>.json and <id>.txt and deletes the oldest
// reports beyond ReportsKept.
func (s *Scheduler) writeReport(r *Report) error {
	dir := s.path(reportsDir)
	if err := writeJSON(filepath.Join(dir, r.ID+".json"), r); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(dir, r.ID+".txt"), []byte(r.Summary())); err != nil {
		return err
	}
	ids, err := s.reportIDs()
	if err != nil {
		return err
	}
	for len(ids) > s.cfg.ReportsKept {
		_ = os.Remove(filepath.Join(dir, ids[0]+".json"))
		_ = os.Remove(filepath.Join(dir, ids[0]+".txt"))
		ids = ids[1:]
	}
	return nil
}

// reportIDs lists the stored report IDs, oldest first (IDs start with the
// UTC start time).
func (s *Scheduler) reportIDs() ([]string, error) {
	ents, err := os.ReadDir(s.path(reportsDir))
	if err != nil {
		return nil, fmt.Errorf("list reports: %w", err)
	}
	var ids []string
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name(), ".json"); ok && !strings.HasPrefix(id, ".") {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// Reports returns the stored reports, newest first, at most limit of them
// (all when limit ≤ 0).
func (s *Scheduler) Reports(limit int) ([]*Report, error) {
	ids, err := s.reportIDs()
	if err != nil {
		return nil, err
	}
	slices.Reverse(ids)
	if limit > 0 && len(ids) > limit {
		ids = ids[:limit]
	}
	out := make([]*Report, 0, len(ids))
	for _, id := range ids {
		var r Report
		if ok, err := readJSON(filepath.Join(s.path(reportsDir), id+".json"), &r); err != nil || !ok {
			continue // deleted meanwhile, or unreadable: skip it
		}
		out = append(out, &r)
	}
	return out, nil
}

func reportID(t time.Time, k Kind) string {
	return t.UTC().Format("20060102T150405.000Z") + "-" + string(k)
}
