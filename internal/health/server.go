package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/talos-ironclad/talos/internal/tlog"
)

// Server timeouts: the endpoints are tiny, so anything slower is a stuck or
// hostile client.
const (
	serverReadHeaderTimeout = 5 * time.Second
	serverWriteTimeout      = 10 * time.Second
	serverIdleTimeout       = 60 * time.Second
	// requestCheckTimeout bounds how long /health waits for a fresh
	// evaluation before answering with the last known one.
	requestCheckTimeout = 5 * time.Second
)

// CheckAddr returns nil if addr (host:port) binds to loopback only: an IP
// literal in 127.0.0.0/8 or ::1, or "localhost". An empty host (":8081",
// every interface), another name or address is refused unless
// allowNonLoopback is true: every listener binds to loopback unless
// configured otherwise.
func CheckAddr(addr string, allowNonLoopback bool) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("health address %q is not host:port (for example 127.0.0.1:8081): %w", addr, err)
	}
	if port == "" {
		return fmt.Errorf("health address %q has no port (for example 127.0.0.1:8081)", addr)
	}
	if allowNonLoopback {
		return nil
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	shown := host
	if shown == "" {
		shown = "every interface"
	}
	return fmt.Errorf("health address %q would listen on %s, not loopback; use 127.0.0.1, ::1 or localhost (or allow non-loopback explicitly)", addr, shown)
}

// ServerConfig configures the health server.
type ServerConfig struct {
	// Addr is host:port; port 0 picks a free port (see Server.Addr).
	Addr string
	// AllowNonLoopback lets Addr be something other than loopback.
	AllowNonLoopback bool
	// Handlers are extra read-only endpoints served next to /health, keyed
	// by path (for example the VRAM mutex's "/vram"). A path must start
	// with "/" and must not be /health, /ready, /metrics or "/".
	Handlers map[string]http.Handler
}

func checkHandlers(hs map[string]http.Handler) error {
	for path, h := range hs {
		switch {
		case !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " {}"):
			return fmt.Errorf("extra handler path %q is not a plain path starting with \"/\" (for example /vram)", path)
		case path == "/" || path == "/health" || path == "/ready" || path == "/metrics":
			return fmt.Errorf("extra handler path %q is one of the server's own endpoints (/health, /ready, /metrics); choose another path", path)
		case h == nil:
			return fmt.Errorf("extra handler for %q is nil", path)
		}
	}
	return nil
}

// Server serves GET /health, GET /ready and GET /metrics, plus the
// ServerConfig.Handlers.
type Server struct {
	cfg     ServerConfig
	checker *Checker
	metrics *Metrics
	log     *slog.Logger
	srv     *http.Server
	ln      net.Listener
	served  chan error
}

// NewServer checks cfg.Addr and returns a server (not yet listening). m may
// be nil (no /metrics); log may be nil.
func NewServer(cfg ServerConfig, c *Checker, m *Metrics, log *slog.Logger) (*Server, error) {
	if c == nil {
		return nil, errors.New("health.NewServer: a Checker is required")
	}
	if err := CheckAddr(cfg.Addr, cfg.AllowNonLoopback); err != nil {
		return nil, err
	}
	if err := checkHandlers(cfg.Handlers); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{cfg: cfg, checker: c, metrics: m, log: log}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: serverReadHeaderTimeout,
		WriteTimeout:      serverWriteTimeout,
		IdleTimeout:       serverIdleTimeout,
	}
	return s, nil
}

// Handler returns the HTTP handler (for tests and for mounting elsewhere).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/health", s.handleHealth)
	mux.HandleFunc("/ready", s.handleReady)
	if s.metrics != nil {
		prom := promhttp.HandlerFor(s.metrics.Registry(), promhttp.HandlerOpts{})
		mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
			if !getOnly(w, r) {
				return
			}
			// Refresh the gauges (cheap when cached).
			ctx, cancel := context.WithTimeout(r.Context(), requestCheckTimeout)
			_, _ = s.checker.Report(ctx)
			cancel()
			prom.ServeHTTP(w, r)
		})
	}
	for path, h := range s.cfg.Handlers {
		mux.Handle(path, h)
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found: " + r.URL.Path + "; try /health, /ready or /metrics"})
	})
	return s.withCorrelation(mux)
}

// withCorrelation gives every request a correlation ID (tlog): the
// request's X-Talos-Correlation-Id when it is valid (16 lower-case hex),
// else a new one. The ID is echoed in the response header and carried in
// the request's context, so every line logged with that context carries
// it, including the request's own debug line (method, path, status,
// duration).
func (s *Server) withCorrelation(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(tlog.CorrelationHeader)
		if !tlog.ValidCorrelationID(id) {
			id = tlog.NewCorrelationID()
		}
		ctx := tlog.WithCorrelationID(r.Context(), id)
		w.Header().Set(tlog.CorrelationHeader, id)
		sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		began := time.Now()
		next.ServeHTTP(sw, r.WithContext(ctx))
		s.log.DebugContext(ctx, "http request", "method", r.Method, "path", r.URL.Path,
			"status", sw.code, "duration", time.Since(began))
	})
}

// statusWriter records the status code a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func getOnly(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "method " + r.Method + " not allowed; use GET"})
	return false
}

// StatusCode is the HTTP code for a status: 200 for healthy or degraded,
// 503 for unhealthy.
func StatusCode(s Status) int {
	if s == Healthy || s == Degraded {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if !getOnly(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), requestCheckTimeout)
	defer cancel()
	rep, err := s.checker.Report(ctx)
	if err != nil && r.Context().Err() != nil {
		return // client went away
	}
	writeJSON(w, StatusCode(rep.Status), rep)
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !getOnly(w, r) {
		return
	}
	ready := s.checker.Ready()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, map[string]bool{"ready": ready})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// Listen binds the address. After it returns, Addr is the real address
// (with the port the kernel chose for port 0).
func (s *Server) Listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("health server cannot listen on %s: %w (is another talos running? change TALOS_HEALTH_ADDR)", s.cfg.Addr, err)
	}
	s.ln = ln
	return nil
}

// Addr is the bound address, or the configured one before Listen.
func (s *Server) Addr() string {
	if s.ln != nil {
		return s.ln.Addr().String()
	}
	return s.cfg.Addr
}

// Start listens (if Listen was not called) and serves in the background.
func (s *Server) Start() error { return s.StartContext(context.Background()) }

// StartContext is Start, logging "health server listening" with ctx (so
// the line carries ctx's correlation ID, such as the boot's).
func (s *Server) StartContext(ctx context.Context) error {
	if s.ln == nil {
		if err := s.Listen(); err != nil {
			return err
		}
	}
	s.served = make(chan error, 1)
	go func() {
		err := s.srv.Serve(s.ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.served <- err
	}()
	s.log.InfoContext(ctx, "health server listening", "addr", s.Addr())
	return nil
}

// Shutdown stops accepting connections and waits for in-flight requests
// until ctx is done, then closes the rest.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	if s.served != nil {
		if serr := <-s.served; serr != nil && err == nil {
			err = serr
		}
	}
	return err
}

// URL is http://<addr>/health.
func (s *Server) URL() string { return "http://" + strings.TrimSuffix(s.Addr(), "/") + "/health" }
