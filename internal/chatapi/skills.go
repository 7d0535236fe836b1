package chatapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/strikes"
)

// Paths of the skill operations, for the dashboard and scripts: the same
// operations as `talos skill`, behind the operator credentials.
const (
	SkillsPath          = "/api/v1/skills"                   // GET: every record, newest first
	SkillPath           = "/api/v1/skills/show"              // GET ?ref=: record, eligibility, audit trail, active strikes
	SkillScanPath       = "/api/v1/skills/scan"              // POST {"ref"}
	SkillRequestPath    = "/api/v1/skills/request-promotion" // POST {"ref"}: the code goes out of band, never in the answer
	SkillApprovePath    = "/api/v1/skills/approve"           // POST {"ref","code"}
	SkillRejectPath     = "/api/v1/skills/reject"            // POST {"ref","reason"}
	SkillRunPath        = "/api/v1/skills/run"               // POST {"ref","args"}: one sandboxed run, its verdict and strike
	SkillAddPath        = "/api/v1/skills/add"               // POST {"dir","source"}: a folder on this machine into quarantine
	SkillStrikesPath    = "/api/v1/skills/strikes"           // GET ?ref=: the active strikes against the skill's code
	SkillVerifyPath     = "/api/v1/skills/verify"            // GET: both audit chains and every strike's signature
	maxSkillArgs        = 64
	skillActor          = "operator:api"
	maxSkillRequestBody = 4 << 10
)

// SkillRequest is the body of the skill POST operations.
type SkillRequest struct {
	Ref    string   `json:"ref"`
	Code   string   `json:"code,omitempty"`
	Reason string   `json:"reason,omitempty"`
	Args   []string `json:"args,omitempty"` // run: the skill's arguments, at most 64
	// Dir and Source are for add: the skill's folder on the daemon's
	// machine, and where it comes from (user_submitted by default,
	// llm_generated, imported, forked).
	Dir    string `json:"dir,omitempty"`
	Source string `json:"source,omitempty"`
}

// VerifyResponse is the answer of the verify operation: what was checked
// and, for a chain that does not verify, why (the first bad entry).
type VerifyResponse struct {
	OK                 bool   `json:"ok"`
	QuarantineEntries  int64  `json:"quarantine_entries"`
	Strikes            int    `json:"strikes"`
	StrikeAuditEntries int64  `json:"strike_audit_entries"`
	QuarantineError    string `json:"quarantine_error,omitempty"`
	StrikesError       string `json:"strikes_error,omitempty"`
}

// SkillRunResponse is the answer to a run: the record after it, the
// verdict, what the skill printed, and the strike it earned (nil when
// clean). A run that happened is 200 whatever its verdict.
type SkillRunResponse struct {
	Record     quarantine.Record `json:"record"`
	Verdict    sandbox.Verdict   `json:"verdict"`
	ExitCode   int               `json:"exit_code"`
	Stdout     string            `json:"stdout"`
	Stderr     string            `json:"stderr"`
	Truncated  bool              `json:"truncated"`
	DurationMS int64             `json:"duration_ms"`
	Egress     []egress.Event    `json:"egress,omitempty"`
	Strike     *strikes.Result   `json:"strike"`
}

// SkillSource gives the daemon's skill lifecycle (opened once at boot and
// shared with the dashboard), or an error while it is not open. The
// handlers never close it.
type SkillSource func() (*host.Skills, error)

// NewSkillHandlers returns the handlers of the skill operations, keyed by
// path, with the chat API's credentials and rate limit.
func NewSkillHandlers(cfg Config, open SkillSource) (map[string]http.Handler, error) {
	if open == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "chatapi.NewSkillHandlers", "the SkillSource is nil")
	}
	h, err := newHandler(cfg)
	if err != nil {
		return nil, err
	}
	get := func(fn func(ctx context.Context, s *host.Skills, r *http.Request) (any, error)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				w.Header().Set("Allow", http.MethodGet)
				writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{"method " + clip(r.Method) + " is not allowed on " + clip(r.URL.Path) + "; use GET"})
				return
			}
			if !h.limit(w, r) || !h.authorizedOrRefuse(w, r) {
				return
			}
			h.serveSkill(w, r, open, func(ctx context.Context, s *host.Skills) (any, error) { return fn(ctx, s, r) })
		})
	}
	post := func(fn func(ctx context.Context, s *host.Skills, req SkillRequest) (any, error)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !h.admit(w, r) {
				return
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, maxSkillRequestBody+1))
			if err != nil || len(body) > maxSkillRequestBody {
				writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{"the body is over 4 KiB or unreadable"})
				return
			}
			var req SkillRequest
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil || strings.TrimSpace(req.Ref) == "" && (r.URL.Path != SkillAddPath || strings.TrimSpace(req.Dir) == "") {
				writeJSON(w, http.StatusBadRequest, ErrorBody{`want {"ref": "ID[@VERSION[#HASH]]"} and, for approve, "code", for reject, "reason", for run, "args": ["..."]; for add {"dir": "/path/to/skill"}`})
				return
			}
			h.serveSkill(w, r, open, func(ctx context.Context, s *host.Skills) (any, error) { return fn(ctx, s, req) })
		})
	}
	resolve := func(ctx context.Context, s *host.Skills, ref string) (quarantine.Record, error) {
		return s.Resolve(ctx, ref)
	}
	return map[string]http.Handler{
		SkillsPath: get(func(ctx context.Context, s *host.Skills, _ *http.Request) (any, error) {
			return s.Quarantine.List(ctx, quarantine.Filter{})
		}),
		SkillPath: get(func(ctx context.Context, s *host.Skills, r *http.Request) (any, error) {
			rec, err := resolve(ctx, s, r.URL.Query().Get("ref"))
			if err != nil {
				return nil, err
			}
			el, err := s.Quarantine.Eligibility(ctx, rec.Key)
			if err != nil {
				return nil, err
			}
			audit, err := s.Quarantine.Audit(ctx, rec.Key)
			if err != nil {
				return nil, err
			}
			act, err := s.Strikes.Active(ctx, strikes.Skill{ID: rec.ID, Version: rec.Version, Hash: rec.Hash})
			if err != nil {
				return nil, err
			}
			return map[string]any{"record": rec, "eligibility": el, "audit": audit, "strikes": act}, nil
		}),
		SkillScanPath: post(func(ctx context.Context, s *host.Skills, req SkillRequest) (any, error) {
			rec, err := resolve(ctx, s, req.Ref)
			if err != nil {
				return nil, err
			}
			rep, rec, err := s.Quarantine.Scan(ctx, rec.Key, skillActor)
			return map[string]any{"record": rec, "report": rep}, err
		}),
		SkillRequestPath: post(func(ctx context.Context, s *host.Skills, req SkillRequest) (any, error) {
			rec, err := resolve(ctx, s, req.Ref)
			if err != nil {
				return nil, err
			}
			return s.Quarantine.RequestPromotion(ctx, rec.Key, skillActor)
		}),
		SkillApprovePath: post(func(ctx context.Context, s *host.Skills, req SkillRequest) (any, error) {
			rec, err := resolve(ctx, s, req.Ref)
			if err != nil {
				return nil, err
			}
			rec, err = s.Quarantine.Approve(ctx, rec.Key, req.Code, skillActor)
			if err != nil {
				return nil, err
			}
			_, err = s.Strikes.Reset(ctx, strikes.Skill{ID: rec.ID, Version: rec.Version, Hash: rec.Hash}, skillActor, "promoted")
			return rec, err
		}),
		SkillRunPath: post(func(ctx context.Context, s *host.Skills, req SkillRequest) (any, error) {
			if len(req.Args) > maxSkillArgs {
				return nil, talos.Errorf(talos.CodeInputInvalid, "skills.run", "args has %d entries: at most %d", len(req.Args), maxSkillArgs)
			}
			rec, err := resolve(ctx, s, req.Ref)
			if err != nil {
				return nil, err
			}
			run, err := s.Run(ctx, rec, req.Args, skillActor, host.RunOptions{Image: cfg.SkillImage, Audit: cfg.Audit, Log: cfg.Logger})
			if err != nil {
				return nil, err
			}
			r := run.Result
			return SkillRunResponse{Record: run.Record, Verdict: r.Verdict, ExitCode: r.ExitCode, Stdout: string(r.Stdout),
				Stderr: string(r.Stderr), Truncated: r.Truncated, DurationMS: r.Duration.Milliseconds(), Egress: r.Egress, Strike: run.Strike}, nil
		}),
		SkillAddPath: post(func(ctx context.Context, s *host.Skills, req SkillRequest) (any, error) {
			st := quarantine.SourceType(req.Source)
			if st == "" {
				st = quarantine.SourceUser
			}
			if !st.Valid() {
				return nil, talos.Errorf(talos.CodeInputInvalid, "skills.add", "source %q: want user_submitted, llm_generated, imported or forked", clip(req.Source))
			}
			return s.Quarantine.Add(ctx, req.Dir, quarantine.Source{Type: st, Origin: skillActor}, skillActor)
		}),
		SkillStrikesPath: get(func(ctx context.Context, s *host.Skills, r *http.Request) (any, error) {
			rec, err := resolve(ctx, s, r.URL.Query().Get("ref"))
			if err != nil {
				return nil, err
			}
			return s.Strikes.Active(ctx, strikes.Skill{ID: rec.ID, Version: rec.Version, Hash: rec.Hash})
		}),
		SkillVerifyPath: get(func(ctx context.Context, s *host.Skills, _ *http.Request) (any, error) {
			qh, qerr := s.Quarantine.Verify(ctx)
			sr, serr := s.Strikes.Verify(ctx)
			v := VerifyResponse{OK: qerr == nil && serr == nil, QuarantineEntries: qh.Entries, Strikes: sr.Strikes, StrikeAuditEntries: sr.AuditEntries}
			if qerr != nil {
				v.QuarantineError = qerr.Error()
			}
			if serr != nil {
				v.StrikesError = serr.Error()
			}
			return v, nil
		}),
		SkillRejectPath: post(func(ctx context.Context, s *host.Skills, req SkillRequest) (any, error) {
			if strings.TrimSpace(req.Reason) == "" {
				return nil, talos.Errorf(talos.CodeInputInvalid, "skills.reject", "a reason is required: it goes into the audit trail")
			}
			rec, err := resolve(ctx, s, req.Ref)
			if err != nil {
				return nil, err
			}
			return s.Quarantine.Reject(ctx, rec.Key, skillActor, req.Reason)
		}),
	}, nil
}

// authorizedOrRefuse answers 401 unless the operator's credentials came.
func (h *handler) authorizedOrRefuse(w http.ResponseWriter, r *http.Request) bool {
	if h.authorized(r) {
		return true
	}
	w.Header().Set("WWW-Authenticate", `Basic realm="talos operator"`)
	writeJSON(w, http.StatusUnauthorized, ErrorBody{"operator credentials required (BASIC_AUTH_USER / BASIC_AUTH_PASS from talos.env)"})
	return false
}

// serveSkill takes the skills, runs fn and answers: the result as JSON, a
// refused operation (bad input, not eligible, wrong code) as 400 or 403
// with its message, anything else as 500 without internal detail.
func (h *handler) serveSkill(w http.ResponseWriter, r *http.Request, open SkillSource, fn func(ctx context.Context, s *host.Skills) (any, error)) {
	s, err := open()
	if err != nil {
		h.log.ErrorContext(r.Context(), "skills API: cannot open the skills", "err", err)
		writeJSON(w, http.StatusServiceUnavailable, ErrorBody{"the skill store is not available; see the daemon's log"})
		return
	}
	if r.URL.Path == SkillRunPath {
		// A run outlives the health server's short write timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.RunTimeout()))
	}
	v, err := fn(r.Context(), s)
	if err != nil {
		var te *talos.Error
		switch {
		case errors.As(err, &te) && (te.Code == talos.CodePolicyDenied || te.Code == talos.CodeBadSignature):
			writeJSON(w, http.StatusForbidden, ErrorBody{te.Message})
		case errors.As(err, &te) && isRefusal(te.Code):
			writeJSON(w, http.StatusBadRequest, ErrorBody{err.Error()})
		default:
			h.log.ErrorContext(r.Context(), "skills API: operation failed", "path", r.URL.Path, "err", err)
			writeJSON(w, http.StatusInternalServerError, ErrorBody{"the operation failed; see the daemon's log"})
		}
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// isRefusal reports whether code is an operation refused for what was
// asked (bad input, not found, a skill-lifecycle rule), not a failure of
// the daemon.
func isRefusal(c talos.Code) bool {
	if c == talos.CodeConfigInvalid || c == talos.CodeInputInvalid {
		return true
	}
	info, ok := talos.Lookup(c)
	return ok && (info.Category == talos.CategorySkills || info.Category == talos.CategorySecurity)
}
