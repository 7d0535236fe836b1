package dashboard

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/quarantine"
)

// Overview is the JSON of OverviewPath. Each section carries either its
// data or, in Error, why it has none.
type Overview struct {
	Health      HealthView      `json:"health"`
	Adapters    AdaptersView    `json:"adapters"`
	Maintenance MaintenanceView `json:"maintenance"`
}

// HealthView is the daemon's health: the overall status and each check.
type HealthView struct {
	Status  string      `json:"status,omitempty"`
	Version string      `json:"version,omitempty"`
	UptimeS float64     `json:"uptime_s,omitempty"`
	Checks  []CheckView `json:"checks,omitempty"`
	Error   string      `json:"error,omitempty"`
}

// CheckView is one health check, as /health reports it.
type CheckView struct {
	Name      string  `json:"name"`
	Status    string  `json:"status"`
	Detail    string  `json:"detail"`
	Critical  bool    `json:"critical"`
	LatencyMS float64 `json:"latency_ms"`
}

// AdaptersView lists the agent's adapters.
type AdaptersView struct {
	List  []Adapter `json:"list,omitempty"`
	Error string    `json:"error,omitempty"`
}

// MaintenanceView is the maintenance summary and, in Problem, what needs
// attention.
type MaintenanceView struct {
	Summary string `json:"summary,omitempty"`
	Problem string `json:"problem,omitempty"`
	Error   string `json:"error,omitempty"`
}

// SkillsView is the JSON of SkillsPath: the quarantine records, newest
// change first.
type SkillsView struct {
	Records []SkillView `json:"records"`
	Error   string      `json:"error,omitempty"`
}

// SkillView is one quarantine record.
type SkillView struct {
	ID         string `json:"id"`
	Version    string `json:"version"`
	Hash       string `json:"hash"` // first 12 hex digits
	State      string `json:"state"`
	Language   string `json:"language"`
	Source     string `json:"source"`
	Scan       string `json:"scan"`
	CleanRuns  int    `json:"clean_runs"`
	FailedRuns int    `json:"failed_runs"`
	Approval   string `json:"approval,omitempty"` // the promotion request's status and expiry
	// Strikes is the number of active strikes; nil when unknown, with
	// StrikesError saying why.
	Strikes      *int      `json:"strikes,omitempty"`
	StrikesError string    `json:"strikes_error,omitempty"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// notWired is the text of a view whose source was not given to New.
const notWired = "not available: this piece is not wired into the dashboard yet"

func (d *Dashboard) dataContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), d.cfg.DataTimeout)
}

func (d *Dashboard) serveOverview(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.dataContext(r)
	defer cancel()
	ov := Overview{Health: d.healthView(ctx)}
	if d.deps.Adapters == nil {
		ov.Adapters.Error = notWired
	} else if list, err := d.deps.Adapters(ctx); err != nil {
		ov.Adapters.Error = d.errText(err)
	} else {
		ov.Adapters.List = list
	}
	if d.deps.Maintenance == nil {
		ov.Maintenance.Error = notWired
	} else {
		sum, err := d.deps.Maintenance(ctx)
		ov.Maintenance.Summary = sum
		if err != nil {
			if sum == "" {
				ov.Maintenance.Error = d.errText(err)
			} else {
				ov.Maintenance.Problem = d.errText(err)
			}
		}
	}
	writeJSON(w, http.StatusOK, ov)
}

// healthView is the daemon's health report, or why there is none.
func (d *Dashboard) healthView(ctx context.Context) HealthView {
	if d.deps.Health == nil {
		return HealthView{Error: notWired}
	}
	rep, err := d.deps.Health(ctx)
	if err != nil {
		return HealthView{Error: d.errText(err)}
	}
	return HealthView{Status: string(rep.Status), Version: rep.Version, UptimeS: rep.UptimeS, Checks: checks(rep)}
}

// checks lists rep's checks by name.
func checks(rep health.Report) []CheckView {
	out := make([]CheckView, 0, len(rep.Checks))
	for name, c := range rep.Checks {
		out = append(out, CheckView{Name: name, Status: string(c.Status), Detail: c.Detail, Critical: c.Critical, LatencyMS: c.LatencyMS})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (d *Dashboard) serveSkills(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.dataContext(r)
	defer cancel()
	v := SkillsView{Records: []SkillView{}}
	if d.deps.Skills == nil {
		v.Error = notWired
		writeJSON(w, http.StatusOK, v)
		return
	}
	recs, err := d.deps.Skills(ctx)
	if err != nil {
		v.Error = d.errText(err)
		writeJSON(w, http.StatusOK, v)
		return
	}
	for _, rec := range recs {
		sv := skillView(rec)
		if d.deps.Strikes != nil {
			if n, err := d.deps.Strikes(ctx, rec.Key); err != nil {
				sv.StrikesError = d.errText(err)
			} else {
				sv.Strikes = &n
			}
		}
		v.Records = append(v.Records, sv)
	}
	sort.SliceStable(v.Records, func(i, j int) bool { return v.Records[i].UpdatedAt.After(v.Records[j].UpdatedAt) })
	writeJSON(w, http.StatusOK, v)
}

func skillView(rec quarantine.Record) SkillView {
	hash := rec.Hash
	if len(hash) > 12 {
		hash = hash[:12]
	}
	src := string(rec.Source.Type)
	if rec.Source.Origin != "" {
		src += " (" + rec.Source.Origin + ")"
	}
	s := SkillView{ID: rec.ID, Version: rec.Version, Hash: hash, State: string(rec.State), Language: string(rec.Language),
		Source: src, Scan: string(rec.Scan), CleanRuns: rec.CleanRuns, FailedRuns: rec.FailedRuns, UpdatedAt: rec.UpdatedAt}
	if a := rec.Approval; a != nil {
		s.Approval = string(a.Status)
		if a.Status == quarantine.ApprovalPending {
			s.Approval += " until " + a.ExpiresAt.UTC().Format(time.RFC3339)
		}
	}
	return s
}

// errText is an error as the operator sees it: credentials redacted, a
// source that did not answer in time named as such.
func (d *Dashboard) errText(err error) string {
	msg := redact.Text(err.Error())
	if errors.Is(err, context.DeadlineExceeded) {
		return "no answer within " + d.cfg.DataTimeout.String() + " (" + msg + "); the page retries on its next refresh"
	}
	return msg
}

// clip shortens s to 80 bytes and escapes control characters, for logs.
func clip(s string) string {
	if len(s) > 80 {
		s = s[:80]
		for !utf8.ValidString(s) {
			s = s[:len(s)-1]
		}
		s += "…"
	}
	q := strconv.Quote(s)
	return strings.TrimSuffix(strings.TrimPrefix(q, `"`), `"`)
}
