package chatapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/orchestrator"
)

// Path is where the chat API is served.
const Path = "/api/v1/chat"

// Defaults of Config.
const (
	// DefaultMaxBodyBytes caps a request body (64 KiB): a message of up to
	// orchestrator.DefaultMaxMessageBytes with room for JSON escaping.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultTurnTimeout bounds one turn, streaming included.
	DefaultTurnTimeout = 5 * time.Minute
)

// SSE event names: each token, then exactly one final event.
const (
	EventToken = "token"
	EventDone  = "done"
)

// Request is the body of POST /api/v1/chat.
type Request struct {
	// SessionID continues a session; empty starts one.
	SessionID string `json:"session_id,omitempty"`
	Message   string `json:"message"`
}

// Token is the data of an EventToken event.
type Token struct {
	Text string `json:"text"`
}

// ErrorBody is the JSON body of every refused request.
type ErrorBody struct {
	Error string `json:"error"`
}

// Chatter runs a turn; *orchestrator.Orchestrator implements it.
type Chatter interface {
	Chat(ctx context.Context, t orchestrator.Turn) (*orchestrator.Reply, error)
}

// Config configures the handler.
type Config struct {
	// User and Pass are the operator's credentials (BASIC_AUTH_USER,
	// BASIC_AUTH_PASS). With no Pass every request is refused.
	User, Pass   string
	MaxBodyBytes int64         // DefaultMaxBodyBytes
	TurnTimeout  time.Duration // DefaultTurnTimeout
	// RateLimit requests per RateWindow per client machine
	// (DefaultRateLimit per DefaultRateWindow: API_RATE_LIMIT_MAX,
	// API_RATE_LIMIT_WINDOW); counted before the credentials are checked.
	RateLimit  int
	RateWindow time.Duration
	Logger     *slog.Logger
	// Audit receives the tier-1 records of the skill sandbox's socket proxy
	// during runs through the skills API; nil discards them.
	Audit *slog.Logger
	// SkillImage is the Python image skills run in through the skills API;
	// empty means the sandbox's default image.
	SkillImage string
}

type handler struct {
	cfg                Config
	chat               Chatter
	log                *slog.Logger
	wantUser, wantPass [32]byte
	rate               *limiter
}

// New returns the handler of POST /api/v1/chat: operator credentials
// (HTTP basic, compared in constant time), a JSON body {session_id?,
// message} of at most MaxBodyBytes, and the answer either as JSON (the
// orchestrator.Reply) or, with Accept: text/event-stream, as server-sent
// events: EventToken events carrying Token, then one EventDone event
// carrying the Reply. Bad requests get 400 with every problem named, an
// unknown or expired session 404, too many sessions or a client over its
// rate limit 429 (with Retry-After).
func New(cfg Config, c Chatter) (http.Handler, error) {
	const op = "chatapi.New"
	if c == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "the Chatter is nil: pass the orchestrator")
	}
	h, err := newHandler(cfg)
	if err != nil {
		return nil, err
	}
	h.chat = c
	return h, nil
}

// newHandler checks cfg and fills its defaults.
func newHandler(cfg Config) (*handler, error) {
	const op = "chatapi.New"
	if cfg.MaxBodyBytes < 0 || cfg.TurnTimeout < 0 || cfg.RateLimit < 0 || cfg.RateWindow < 0 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "MaxBodyBytes %d, TurnTimeout %s, RateLimit %d and RateWindow %s must not be negative (0 for the defaults)",
			cfg.MaxBodyBytes, cfg.TurnTimeout, cfg.RateLimit, cfg.RateWindow)
	}
	if cfg.RateLimit == 0 {
		cfg.RateLimit = DefaultRateLimit
	}
	if cfg.RateWindow == 0 {
		cfg.RateWindow = DefaultRateWindow
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.TurnTimeout == 0 {
		cfg.TurnTimeout = DefaultTurnTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &handler{cfg: cfg, log: log, wantUser: sha256.Sum256([]byte(cfg.User)), wantPass: sha256.Sum256([]byte(cfg.Pass)),
		rate: &limiter{max: cfg.RateLimit, window: cfg.RateWindow, seen: map[string]*rateWindow{}}}, nil
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (h *handler) authorized(r *http.Request) bool {
	u, p, ok := r.BasicAuth()
	gu, gp := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
	match := subtle.ConstantTimeCompare(gu[:], h.wantUser[:]) & subtle.ConstantTimeCompare(gp[:], h.wantPass[:])
	return ok && h.cfg.Pass != "" && match == 1
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r) {
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, ErrorBody{"Content-Type " + clip(ct) + " is not accepted; send application/json"})
			return
		}
	}
	req, err := ParseRequest(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes), h.cfg.MaxBodyBytes)
	if err != nil {
		code := http.StatusBadRequest
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) || errors.Is(err, errTooLarge) {
			code = http.StatusRequestEntityTooLarge
		}
		writeJSON(w, code, ErrorBody{err.Error()})
		return
	}
	// Turns outlive the health server's short write timeout.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(h.cfg.TurnTimeout + 5*time.Second))
	ctx, cancel := context.WithTimeout(r.Context(), h.cfg.TurnTimeout)
	defer cancel()
	turn := orchestrator.Turn{SessionID: req.SessionID, Message: req.Message}
	var sse *sseWriter
	if wantsSSE(r.Header.Get("Accept")) {
		sse = &sseWriter{w: w, rc: http.NewResponseController(w)}
		turn.Stream = sse.token
	}
	rep, err := h.chat.Chat(ctx, turn)
	if err != nil {
		code := http.StatusBadRequest
		switch {
		case errors.Is(err, orchestrator.ErrNoSession):
			code = http.StatusNotFound
		case errors.Is(err, orchestrator.ErrTooManySessions):
			code = http.StatusTooManyRequests
		}
		if sse != nil && sse.started {
			sse.event("error", ErrorBody{orchestrator.UserMessage(err)})
			return
		}
		writeJSON(w, code, ErrorBody{orchestrator.UserMessage(err)})
		return
	}
	if sse == nil {
		writeJSON(w, http.StatusOK, rep)
		return
	}
	sse.event(EventDone, rep)
}

func wantsSSE(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == "text/event-stream" {
			return true
		}
	}
	return false
}

// sseWriter writes server-sent events, starting the response on the first.
type sseWriter struct {
	mu      sync.Mutex
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
}

func (s *sseWriter) token(text string) error { return s.event(EventToken, Token{Text: text}) }

// event writes one event whose data is v as one line of JSON (so text
// with newlines cannot end the event early).
func (s *sseWriter) event(name string, v any) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		h := s.w.Header()
		h.Set("Content-Type", "text/event-stream")
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		s.w.WriteHeader(http.StatusOK)
		s.started = true
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(s.w, "event: %s\ndata: %s\n\n", name, data); err != nil {
		return err
	}
	return s.rc.Flush()
}

var errTooLarge = errors.New("request body too large")

// ParseRequest reads one JSON object {session_id?, message} of at most max
// bytes. Unknown fields, a second value, wrong types and a missing message
// are errors; every problem is reported at once, naming the field, its
// (clipped) value and what is allowed.
func ParseRequest(r io.Reader, max int64) (Request, error) {
	var req Request
	body, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return req, fmt.Errorf("%w: more than %d bytes; send a shorter message", errTooLarge, max)
		}
		return req, fmt.Errorf("the request body could not be read: %v", err)
	}
	if int64(len(body)) > max {
		return req, fmt.Errorf("%w: more than %d bytes; send a shorter message", errTooLarge, max)
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return req, errors.New(`the request body is empty; send a JSON object such as {"message": "hello"}`)
	}
	f, problems, err := requestSpec.Decode(body)
	if err != nil {
		return req, err
	}
	req.Message, req.SessionID = f["message"], f["session_id"]
	if err := Problems(problems); err != nil {
		return Request{}, err
	}
	return req, nil
}

// requestSpec is the chat API's request body.
var requestSpec = ObjectSpec{
	What:      "the request body",
	Hint:      `send {"message": "hello"} with an optional "session_id"`,
	Fields:    []string{"message", "session_id"},
	TypeNotes: map[string]string{"session_id": "(or absent to start a session)"},
	Required:  map[string]string{"message": "the text to send"},
}

func jsonProblem(err error) string {
	var se *json.SyntaxError
	switch {
	case err == nil:
		return "null"
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends too early"
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "found a JSON " + te.Value
	}
	return "it does not parse"
}

// clip shortens s to 40 runes and escapes control characters, for messages.
func clip(s string) string {
	r := []rune(s)
	suffix := ""
	if len(r) > 40 {
		r, suffix = r[:40], "…"
	}
	q := fmt.Sprintf("%q", string(r))
	return q[1:len(q)-1] + suffix
}
