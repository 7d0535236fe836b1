package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/quarantine"
)

// Paths of the views' JSON endpoints and actions.
const (
	SecurityPath = "/api/security"
	UnlockPath   = "/api/security/unlock"
	TokensPath   = "/api/tokens"
	DreamsPath   = "/api/dreams"
	MemoryPath   = "/api/memory"
	// MemorySearchPath takes ?q=TEXT (and an optional &k=1…50).
	MemorySearchPath  = "/api/memory/search"
	MemoryPrunePath   = "/api/memory/prune"
	MemoryRestorePath = "/api/memory/restore"
	PanicPath         = "/api/panic"
)

// maxActionBody caps the JSON body of an action (unlock, prune, restore,
// the kill switch).
const maxActionBody = 4 << 10

// ProxyDenyEvent is the audit event of a request the Docker socket proxy
// refused (the skills sandbox's proxy writes it to the daemon's audit log).
const ProxyDenyEvent = "sockproxy.deny"

// ProxyDenial is one request the Docker socket proxy refused.
type ProxyDenial struct {
	Time    time.Time `json:"time"`
	Profile string    `json:"profile"`
	Method  string    `json:"method,omitempty"`
	Path    string    `json:"path,omitempty"`
	Status  string    `json:"status,omitempty"`
	Code    string    `json:"code,omitempty"`
	Reason  string    `json:"reason"`
}

// TokenRow is the token count of one model on one UTC day. Days kept
// only as totals (earlier days of the history) have Prompt and Completion
// 0 and Split false.
type TokenRow struct {
	Day        string `json:"day"`
	Model      string `json:"model"`
	Prompt     int    `json:"prompt"`
	Completion int    `json:"completion"`
	Total      int    `json:"total"`
	Split      bool   `json:"split"` // Prompt and Completion are known
}

// TokensView is the JSON of TokensPath: rows newest day first, models in
// name order within a day; today's total and limit; and where the counts
// come from.
type TokensView struct {
	Rows []TokenRow `json:"rows"`
	// Today is the UTC day of DailyTotal; DailyLimit 0 means no limit.
	Today             string `json:"today,omitempty"`
	DailyTotal        int    `json:"daily_total"`
	DailyLimit        int    `json:"daily_limit"`
	EscalationRefused bool   `json:"escalation_refused"`
	// Source is orchestrator.TokenSourceRedis (every process sharing the
	// Redis) or orchestrator.TokenSourceMemory (this process only); Note
	// says why when a configured Redis did not answer.
	Source string `json:"source,omitempty"`
	Note   string `json:"note,omitempty"`
	Error  string `json:"error,omitempty"`
}

// tokensView shapes a tracker summary for the tokens view: today with
// prompt and completion, earlier days as totals.
func tokensView(sum orchestrator.TokenSummary) TokensView {
	v := TokensView{Rows: []TokenRow{}, Today: sum.Live.Date, DailyTotal: sum.Live.DailyTotal, DailyLimit: sum.Live.DailyLimit,
		EscalationRefused: sum.Live.EscalationRefused, Source: sum.Source, Note: sum.Note}
	for m, t := range sum.Live.Models {
		v.Rows = append(v.Rows, TokenRow{Day: sum.Live.Date, Model: m, Prompt: t.PromptTokens, Completion: t.CompletionTokens, Total: t.TotalTokens, Split: true})
	}
	for _, d := range sum.History {
		if d.Date == sum.Live.Date {
			continue
		}
		for m, total := range d.Models {
			v.Rows = append(v.Rows, TokenRow{Day: d.Date, Model: m, Total: total})
		}
	}
	sort.Slice(v.Rows, func(i, j int) bool {
		if v.Rows[i].Day != v.Rows[j].Day {
			return v.Rows[i].Day > v.Rows[j].Day
		}
		return v.Rows[i].Model < v.Rows[j].Model
	})
	return v
}

// DreamView is one dream (maintenance) cycle's report.
type DreamView struct {
	ID       string    `json:"id"`
	Kind     string    `json:"kind"`
	Outcome  string    `json:"outcome"`
	Started  time.Time `json:"started"`
	Duration string    `json:"duration"`
	// Summary is the report as readable text.
	Summary string `json:"summary"`
}

// DreamsView is the JSON of DreamsPath, newest first.
type DreamsView struct {
	Reports []DreamView `json:"reports"`
	Error   string      `json:"error,omitempty"`
}

// MCPPending is an MCP server whose changed tool definitions wait for the
// operator's approval (`talos mcp approve`).
type MCPPending struct {
	Server string `json:"server"`
	Reason string `json:"reason"`
	// Changes lists the added, changed and removed tools.
	Changes string `json:"changes"`
}

// Decision is one firewall decision from the audit log: a turn or an
// alert whose verdict was not a plain allow, with the rules that matched.
type Decision struct {
	Time    time.Time `json:"time"`
	Event   string    `json:"event"`
	Action  string    `json:"action"`
	Rules   string    `json:"rules"`
	Source  string    `json:"source,omitempty"`
	Session string    `json:"session,omitempty"`
}

// LockdownView is the firewall's lockdown as the security view shows it.
type LockdownView struct {
	Locked         bool      `json:"locked"`
	Since          time.Time `json:"since,omitzero"`
	By             string    `json:"by,omitempty"`
	Reason         string    `json:"reason,omitempty"`
	CodeExpires    time.Time `json:"code_expires,omitzero"`
	FailedAttempts int       `json:"failed_attempts,omitempty"`
	Error          string    `json:"error,omitempty"`
}

// SecurityView is the JSON of SecurityPath. Each list has, in its
// ...Error field, why it is missing.
type SecurityView struct {
	Lockdown          LockdownView  `json:"lockdown"`
	Decisions         []Decision    `json:"decisions"`
	DecisionsError    string        `json:"decisions_error,omitempty"`
	ProxyDenials      []ProxyDenial `json:"proxy_denials"`
	ProxyDenialsError string        `json:"proxy_denials_error,omitempty"`
	MCP               []MCPPending  `json:"mcp"`
	MCPError          string        `json:"mcp_error,omitempty"`
	// Promotions are the skills whose promotion waits for approval.
	Promotions      []SkillView `json:"promotions"`
	PromotionsError string      `json:"promotions_error,omitempty"`
	// Strikes are the skills with active strikes.
	Strikes      []SkillView `json:"strikes"`
	StrikesError string      `json:"strikes_error,omitempty"`
}

// MemoryStats is the long-term memory's size and pruning thresholds.
type MemoryStats struct {
	Count        int    `json:"count"`
	Ceiling      int    `json:"ceiling"`
	PruneTrigger int    `json:"prune_trigger"`
	PruneTarget  int    `json:"prune_target"`
	Store        string `json:"store"`
	Archive      string `json:"archive"`
}

// MemoryHit is one memory a search found.
type MemoryHit struct {
	ID         string  `json:"id"`
	Similarity float64 `json:"similarity"`
	Source     string  `json:"source"`
	Trusted    bool    `json:"trusted"`
	Text       string  `json:"text"`
}

// Memory is the long-term memory the memory view works on.
type Memory interface {
	// Stats counts the memories.
	Stats(ctx context.Context) (MemoryStats, error)
	// Search returns up to k memories similar to text.
	Search(ctx context.Context, text string, k int) ([]MemoryHit, error)
	// Prune archives and deletes the least relevant memories above the
	// prune threshold, and says what it did.
	Prune(ctx context.Context) (string, error)
	// Restore puts back the memories of one prune run (run empty: every
	// pruned memory not in the store), and says what it did.
	Restore(ctx context.Context, run string) (string, error)
}

// MemoryView is the JSON of MemoryPath.
type MemoryView struct {
	Stats *MemoryStats `json:"stats,omitempty"`
	Error string       `json:"error,omitempty"`
}

// SearchView is the JSON of MemorySearchPath.
type SearchView struct {
	Hits  []MemoryHit `json:"hits"`
	Error string      `json:"error,omitempty"`
}

// ActionResult is the answer to an action: what was done, or why not.
type ActionResult struct {
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
}

func (d *Dashboard) serveTokens(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.dataContext(r)
	defer cancel()
	v := TokensView{Rows: []TokenRow{}}
	if d.deps.Tokens == nil {
		v.Error = notWired
	} else if sum, err := d.deps.Tokens(ctx); err != nil {
		v.Error = d.errText(err)
	} else {
		v = tokensView(sum)
	}
	writeJSON(w, http.StatusOK, v)
}

func (d *Dashboard) serveDreams(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.dataContext(r)
	defer cancel()
	v := DreamsView{Reports: []DreamView{}}
	if d.deps.Dreams == nil {
		v.Error = notWired
	} else if reps, err := d.deps.Dreams(ctx); err != nil {
		v.Error = d.errText(err)
	} else {
		v.Reports = append(v.Reports, reps...)
	}
	writeJSON(w, http.StatusOK, v)
}

func (d *Dashboard) serveSecurity(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.dataContext(r)
	defer cancel()
	v := SecurityView{Decisions: []Decision{}, ProxyDenials: []ProxyDenial{}, MCP: []MCPPending{}, Promotions: []SkillView{}, Strikes: []SkillView{}}
	if d.deps.Lockdown == nil {
		v.Lockdown.Error = notWired
	} else if st, err := d.deps.Lockdown(ctx); err != nil {
		v.Lockdown.Error = d.errText(err)
	} else if st.Active {
		v.Lockdown = LockdownView{Locked: true, Since: st.TriggeredAt, By: st.TriggeredBy, Reason: st.Reason,
			CodeExpires: st.CodeExpires, FailedAttempts: st.FailedAttempts}
	}
	if d.deps.Audit == nil {
		v.DecisionsError, v.ProxyDenialsError = notWired, notWired
	} else {
		v.Decisions, v.ProxyDenials = auditViews(d.deps.Audit)
	}
	if d.deps.MCPPending == nil {
		v.MCPError = notWired
	} else if p, err := d.deps.MCPPending(ctx); err != nil {
		v.MCPError = d.errText(err)
	} else {
		v.MCP = append(v.MCP, p...)
	}
	if d.deps.Skills == nil {
		v.PromotionsError, v.StrikesError = notWired, notWired
	} else if recs, err := d.deps.Skills(ctx); err != nil {
		v.PromotionsError = d.errText(err)
		v.StrikesError = v.PromotionsError
	} else {
		if d.deps.Strikes == nil {
			v.StrikesError = notWired
		}
		for _, rec := range recs {
			sv := skillView(rec)
			if rec.Approval != nil && rec.Approval.Status == quarantine.ApprovalPending {
				v.Promotions = append(v.Promotions, sv)
			}
			if d.deps.Strikes == nil {
				continue
			}
			n, err := d.deps.Strikes(ctx, rec.Key)
			if err != nil {
				v.StrikesError = d.errText(err)
				continue
			}
			if n > 0 {
				sv.Strikes = &n
				v.Strikes = append(v.Strikes, sv)
			}
		}
	}
	writeJSON(w, http.StatusOK, v)
}

// auditViews picks, newest first, the audit lines that carry a firewall
// verdict other than a plain allow, and the socket proxy's denials.
func auditViews(f *LogFeed) ([]Decision, []ProxyDenial) {
	lines, _ := f.After(0)
	decs, denials := []Decision{}, []ProxyDenial{}
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if l.fields["event"] == ProxyDenyEvent {
			path := l.fields["path"]
			if path == "" {
				path = l.fields["request_line"]
			}
			denials = append(denials, ProxyDenial{Time: l.Time, Profile: l.fields["profile"], Method: l.fields["method"], Path: path,
				Status: l.fields["status"], Code: l.fields["code"], Reason: l.fields["reason"]})
			continue
		}
		rules := l.fields["rules"]
		action := l.fields["firewall"]
		if action == "" {
			action = l.fields["action"]
		}
		if (rules == "" || rules == "none") && (action == "" || action == "allow") {
			continue
		}
		decs = append(decs, Decision{Time: l.Time, Event: l.Msg, Action: action, Rules: rules,
			Source: l.fields["source"], Session: l.fields["session"]})
	}
	return decs, denials
}

// readAction decodes an action's JSON body into v, refusing unknown fields
// and bodies over maxActionBody.
func readAction(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxActionBody+1))
	if err != nil {
		return fmt.Errorf("the request body could not be read: %v", err)
	}
	if len(body) > maxActionBody {
		return fmt.Errorf("the request body is over %d bytes", maxActionBody)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("the request body is not the expected JSON object (%s)", redact.Value(err.Error()))
	}
	return nil
}

func (d *Dashboard) serveUnlock(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Code string `json:"code"`
	}
	if err := readAction(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, ActionResult{Error: err.Error()})
		return
	}
	code := strings.TrimSpace(req.Code)
	if code == "" || len(code) > 32 || strings.IndexFunc(code, func(c rune) bool { return c < '0' || c > '9' }) >= 0 {
		writeJSON(w, http.StatusBadRequest, ActionResult{Error: "field code must be the unlock code: digits only, as written to the unlock-code file"})
		return
	}
	if d.deps.Unlock == nil {
		writeJSON(w, http.StatusServiceUnavailable, ActionResult{Error: "the unlock is " + notWired})
		return
	}
	ctx, cancel := d.dataContext(r)
	defer cancel()
	res, err := d.deps.Unlock(ctx, code)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ActionResult{Error: d.errText(err)})
		return
	}
	d.log.Warn("dashboard unlock attempt", "result", string(res))
	status := http.StatusOK
	if res != firewall.UnlockOK {
		status = http.StatusForbidden
	}
	writeJSON(w, status, ActionResult{Result: string(res)})
}

func (d *Dashboard) serveMemory(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := d.dataContext(r)
	defer cancel()
	var v MemoryView
	if d.deps.Memory == nil {
		v.Error = notWired
	} else if st, err := d.deps.Memory.Stats(ctx); err != nil {
		v.Error = d.errText(err)
	} else {
		v.Stats = &st
	}
	writeJSON(w, http.StatusOK, v)
}

func (d *Dashboard) serveMemorySearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	k := 10
	var problems []string
	if q == "" || len(q) > 4096 || !utf8.ValidString(q) {
		problems = append(problems, "parameter q is "+redact.Value(q)+": it must be the text to search for, 1 to 4096 bytes of UTF-8")
	}
	if s := r.URL.Query().Get("k"); s != "" {
		if _, err := fmt.Sscanf(s, "%d", &k); err != nil || k < 1 || k > 50 || fmt.Sprint(k) != s {
			problems = append(problems, "parameter k is "+redact.Value(s)+": it must be a whole number from 1 to 50")
		}
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, SearchView{Hits: []MemoryHit{}, Error: strings.Join(problems, "; ")})
		return
	}
	ctx, cancel := d.dataContext(r)
	defer cancel()
	v := SearchView{Hits: []MemoryHit{}}
	if d.deps.Memory == nil {
		v.Error = notWired
	} else if hits, err := d.deps.Memory.Search(ctx, q, k); err != nil {
		v.Error = d.errText(err)
	} else {
		v.Hits = append(v.Hits, hits...)
	}
	writeJSON(w, http.StatusOK, v)
}

func (d *Dashboard) serveMemoryPrune(w http.ResponseWriter, r *http.Request) {
	var req struct{}
	if err := readAction(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, ActionResult{Error: err.Error()})
		return
	}
	d.memoryAction(w, r, "prune", func(ctx context.Context) (string, error) { return d.deps.Memory.Prune(ctx) })
}

func (d *Dashboard) serveMemoryRestore(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Run string `json:"run"`
	}
	if err := readAction(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, ActionResult{Error: err.Error()})
		return
	}
	if len(req.Run) > 128 || strings.IndexFunc(req.Run, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
		writeJSON(w, http.StatusBadRequest, ActionResult{Error: "field run is " + redact.Value(req.Run) + ": it must be a prune run's id (up to 128 printable characters) or empty for every pruned memory"})
		return
	}
	d.memoryAction(w, r, "restore", func(ctx context.Context) (string, error) { return d.deps.Memory.Restore(ctx, req.Run) })
}

// memoryAction runs a memory change, which may take longer than a read:
// it is bounded by the request, not DataTimeout.
func (d *Dashboard) memoryAction(w http.ResponseWriter, r *http.Request, what string, f func(context.Context) (string, error)) {
	if d.deps.Memory == nil {
		writeJSON(w, http.StatusServiceUnavailable, ActionResult{Error: "the memory " + what + " is " + notWired})
		return
	}
	res, err := f(r.Context())
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ActionResult{Result: res, Error: d.errText(err)})
		return
	}
	d.log.Info("dashboard memory "+what, "result", res)
	writeJSON(w, http.StatusOK, ActionResult{Result: res})
}

// panicConfirm is what the kill switch's confirmation field must hold.
const panicConfirm = "STOP"

func (d *Dashboard) servePanic(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Reason  string `json:"reason"`
		Confirm string `json:"confirm"`
	}
	if err := readAction(r, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, ActionResult{Error: err.Error()})
		return
	}
	var problems []string
	reason := strings.TrimSpace(req.Reason)
	if reason == "" || len(reason) > 500 || strings.IndexFunc(reason, func(c rune) bool { return c < 0x20 || c == 0x7f }) >= 0 {
		problems = append(problems, "field reason is "+redact.Value(req.Reason)+": say why, in 1 to 500 printable characters")
	}
	if req.Confirm != panicConfirm {
		problems = append(problems, "field confirm is "+redact.Value(req.Confirm)+": type "+panicConfirm+" to confirm the kill switch")
	}
	if len(problems) > 0 {
		writeJSON(w, http.StatusBadRequest, ActionResult{Error: strings.Join(problems, "; ")})
		return
	}
	if d.deps.Panic == nil {
		writeJSON(w, http.StatusServiceUnavailable, ActionResult{Error: "the kill switch is " + notWired + "; use `talos panic`"})
		return
	}
	if err := d.deps.Panic(r.Context(), reason); err != nil {
		writeJSON(w, http.StatusInternalServerError, ActionResult{Error: d.errText(err)})
		return
	}
	d.log.Warn("kill switch pulled from the dashboard", "reason", reason)
	writeJSON(w, http.StatusAccepted, ActionResult{Result: "stopping: the daemon is shutting down"})
}
