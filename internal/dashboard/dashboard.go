package dashboard

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/quarantine"
)

// ChatPath is where the dashboard serves the chat API (the same path as the
// daemon's), so the browser talks to one origin with one login.
const ChatPath = "/api/v1/chat"

// Paths of the JSON endpoints the pages fetch.
const (
	OverviewPath = "/api/overview"
	SkillsPath   = "/api/skills"
)

// Realm is the basic-auth realm the browser shows in its login prompt.
const Realm = "Talos dashboard"

// DefaultDataTimeout bounds how long one JSON endpoint waits for its data
// (health checks, the skills store).
const DefaultDataTimeout = 5 * time.Second

// CSP is the Content-Security-Policy of every response: scripts, styles
// and connections only from the dashboard itself, no inline code, no
// framing, no plugins.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

//go:embed static
var staticFiles embed.FS

// Adapter is one adapter the agent runs on, as the overview shows it.
type Adapter struct {
	Role   string `json:"role"`
	Name   string `json:"name"`
	Detail string `json:"detail"`
}

// Deps are where the dashboard's data comes from. A nil func makes its view
// say that the piece is not available instead of showing anything made up.
type Deps struct {
	// Health returns the daemon's health report (the /health document).
	Health func(ctx context.Context) (health.Report, error)
	// Adapters returns the agent's adapters; an error says why there are
	// none (for example the agent is still being built).
	Adapters func(ctx context.Context) ([]Adapter, error)
	// Maintenance returns the maintenance summary (next window, last
	// cycle); a non-nil error is a problem that needs attention, shown
	// next to the summary.
	Maintenance func(ctx context.Context) (string, error)
	// Skills returns the quarantine records (every state).
	Skills func(ctx context.Context) ([]quarantine.Record, error)
	// Strikes returns the number of active strikes of a record's skill;
	// nil leaves the strike column empty.
	Strikes func(ctx context.Context, key quarantine.Key) (int, error)
	// Chat is the chat API handler (chatapi.New) served at ChatPath; nil
	// answers 503 there.
	Chat http.Handler
	// Turns runs the chat turns of the WebSocket at WSChatPath (the
	// orchestrator); nil answers 503 there.
	Turns chatapi.Chatter
	// Metrics returns the daemon's metric samples (GatherMetrics over the
	// registry /metrics serves).
	Metrics func(ctx context.Context) ([]Metric, error)
	// Logs is the feed of the daemon's log lines (tiers 2 and 3).
	Logs *LogFeed
	// Audit is the feed of the audit log's lines (tier 1): the security
	// view lists the firewall decisions in it.
	Audit *LogFeed
	// Lockdown returns the firewall's lockdown state.
	Lockdown func(ctx context.Context) (firewall.LockdownState, error)
	// Unlock enters an unlock code into the lockdown.
	Unlock func(ctx context.Context, code string) (firewall.UnlockResult, error)
	// MCPPending returns the MCP servers whose changed tool definitions
	// wait for approval.
	MCPPending func(ctx context.Context) ([]MCPPending, error)
	// Tokens returns the token tracker's summary (an
	// orchestrator.Tracker's Summary); the tokens view shows each model's
	// counts per day, today's total against the limit, and where the
	// counts come from.
	Tokens func(ctx context.Context) (orchestrator.TokenSummary, error)
	// Dreams returns the latest dream cycle reports, newest first.
	Dreams func(ctx context.Context) ([]DreamView, error)
	// Memory is the long-term memory (stats, search, prune, restore).
	Memory Memory
	// Panic is the kill switch: it starts the daemon's panic shutdown
	// with the operator's reason.
	Panic func(ctx context.Context, reason string) error
}

// Config configures the dashboard.
type Config struct {
	// User and Pass are the operator's credentials (BASIC_AUTH_USER,
	// BASIC_AUTH_PASS), checked in constant time on every request. An
	// empty Pass is refused by New.
	User, Pass string
	// DataTimeout bounds each JSON endpoint's data (DefaultDataTimeout).
	DataTimeout time.Duration
	// Logger receives refused requests and data errors; nil discards.
	Logger *slog.Logger
}

// Dashboard is the dashboard's http.Handler: the pages, their static
// files, the JSON endpoints and the chat API, all behind basic auth, with
// a strict Content-Security-Policy and cross-origin protection on every
// state-changing request.
type Dashboard struct {
	cfg                Config
	deps               Deps
	log                *slog.Logger
	wantUser, wantPass [32]byte
	csrf               string
	handler            http.Handler
	// stop closes when Serve's context ends: the log streams and the
	// WebSockets end with it instead of holding the shutdown up.
	stop     chan struct{}
	stopOnce sync.Once
}

// pages maps each page's path to its embedded HTML file.
func pages() map[string]string {
	return map[string]string{
		"/":         "static/index.html",
		"/chat":     "static/chat.html",
		"/skills":   "static/skills.html",
		"/live":     "static/live.html",
		"/logs":     "static/logs.html",
		"/security": "static/security.html",
		"/memory":   "static/memory.html",
		"/tokens":   "static/tokens.html",
		"/dreams":   "static/dreams.html",
	}
}

// New returns the dashboard for cfg and deps. It refuses an empty
// password or a negative DataTimeout.
func New(cfg Config, deps Deps) (*Dashboard, error) {
	const op = "dashboard.New"
	var problems []error
	if cfg.Pass == "" {
		problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, op, "BASIC_AUTH_PASS is empty: the dashboard needs the operator's password (set it in talos.env)"))
	}
	if cfg.User == "" {
		problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, op, "BASIC_AUTH_USER is empty: the dashboard needs the operator's user name"))
	}
	if cfg.DataTimeout < 0 {
		problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, op, "DataTimeout %s is negative: use 0 for the default %s", cfg.DataTimeout, DefaultDataTimeout))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if cfg.DataTimeout == 0 {
		cfg.DataTimeout = DefaultDataTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	token, err := newCSRFToken()
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "no randomness for the CSRF token", err)
	}
	d := &Dashboard{cfg: cfg, deps: deps, log: log, csrf: token, stop: make(chan struct{}),
		wantUser: sha256.Sum256([]byte(cfg.User)), wantPass: sha256.Sum256([]byte(cfg.Pass))}
	mux := http.NewServeMux()
	for p, file := range pages() {
		pattern := "GET " + p
		if p == "/" {
			pattern = "GET /{$}"
		}
		mux.HandleFunc(pattern, d.servePage(file))
	}
	sub, err := fs.Sub(staticFiles, "static")
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "the embedded static files are missing", err)
	}
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(sub)))
	mux.HandleFunc("GET "+OverviewPath, d.serveOverview)
	mux.HandleFunc("GET "+SkillsPath, d.serveSkills)
	mux.HandleFunc("POST "+ChatPath, d.serveChat)
	mux.HandleFunc("GET "+SessionPath, d.serveSession)
	mux.HandleFunc("GET "+MetricsPath, d.serveMetrics)
	mux.HandleFunc("GET "+LogsStreamPath, d.serveLogs)
	mux.HandleFunc("GET "+SecurityPath, d.serveSecurity)
	mux.HandleFunc("POST "+UnlockPath, d.serveUnlock)
	mux.HandleFunc("GET "+TokensPath, d.serveTokens)
	mux.HandleFunc("GET "+DreamsPath, d.serveDreams)
	mux.HandleFunc("GET "+MemoryPath, d.serveMemory)
	mux.HandleFunc("GET "+MemorySearchPath, d.serveMemorySearch)
	mux.HandleFunc("POST "+MemoryPrunePath, d.serveMemoryPrune)
	mux.HandleFunc("POST "+MemoryRestorePath, d.serveMemoryRestore)
	mux.HandleFunc("POST "+PanicPath, d.servePanic)
	mux.HandleFunc("GET "+WSChatPath, d.serveWSChat)
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d.log.Warn("dashboard refused a cross-origin request", "method", r.Method, "path", r.URL.Path,
			"origin", clip(r.Header.Get("Origin")), "sec_fetch_site", clip(r.Header.Get("Sec-Fetch-Site")))
		writeJSON(w, http.StatusForbidden, errorBody{Error: "cross-origin request refused: the dashboard accepts changes only from its own pages"})
	}))
	d.handler = d.secure(d.auth(csrf.Handler(d.checkCSRF(mux))))
	return d, nil
}

// ServeHTTP serves the dashboard.
func (d *Dashboard) ServeHTTP(w http.ResponseWriter, r *http.Request) { d.handler.ServeHTTP(w, r) }

// secure sets the security headers of every response.
func (d *Dashboard) secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// auth lets through only requests carrying the operator's credentials,
// compared in constant time (hashed first, so lengths leak nothing).
func (d *Dashboard) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gu, gp := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		match := subtle.ConstantTimeCompare(gu[:], d.wantUser[:]) & subtle.ConstantTimeCompare(gp[:], d.wantPass[:])
		if !ok || match != 1 {
			if ok {
				d.log.Warn("dashboard login refused: wrong user or password", "path", r.URL.Path, "remote", r.RemoteAddr)
			}
			w.Header().Set("WWW-Authenticate", `Basic realm="`+Realm+`", charset="UTF-8"`)
			writeJSON(w, http.StatusUnauthorized, errorBody{Error: "log in with the operator's credentials (BASIC_AUTH_USER, BASIC_AUTH_PASS)"})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// servePage serves one embedded page as it is: the pages carry no data,
// their scripts fetch it as JSON and render it as text.
func (d *Dashboard) servePage(file string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		b, err := staticFiles.ReadFile(file)
		if err != nil {
			http.Error(w, "page missing from the binary", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(b)
	}
}

func (d *Dashboard) serveChat(w http.ResponseWriter, r *http.Request) {
	if d.deps.Chat == nil {
		writeJSON(w, http.StatusServiceUnavailable, errorBody{Error: "the chat is not available: the agent is not wired into this dashboard"})
		return
	}
	d.deps.Chat.ServeHTTP(w, r)
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
