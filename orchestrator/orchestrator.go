package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/rag"
)

// Defaults of Config. Each zero field of Config takes the one named here.
const (
	// DefaultSessionTimeout is SESSION_TIMEOUT (30 minutes): a
	// session with no turn for this long is forgotten.
	DefaultSessionTimeout = 30 * time.Minute
	// DefaultHistoryMessages is MEMORY_CONTEXT_WINDOW (10): the
	// session's latest messages put into each prompt.
	DefaultHistoryMessages = 10
	// DefaultMemoryBudget is the token budget of retrieved memories
	// (rag.DefaultBudget: the 4,000-token context minus the answer's and
	// the system prompt's reserves).
	DefaultMemoryBudget = rag.DefaultBudget
	// DefaultMaxSteps bounds the model calls of one turn: each tool round
	// costs one, so a model that keeps calling tools stops here.
	DefaultMaxSteps = 5
	// DefaultMaxMessageBytes bounds a user's message (32 KiB): a chat
	// message, not a document upload.
	DefaultMaxMessageBytes = 32 << 10
	// DefaultMaxSessions bounds the sessions held at once; a new session
	// beyond it is refused until others expire.
	DefaultMaxSessions = 1000
	// DefaultToolTimeout bounds one tool call.
	DefaultToolTimeout = 60 * time.Second
	// AuditEvent is the tier-1 audit event written once per turn.
	AuditEvent = "chat_turn"
)

// Firewall scans text for prompt injection. *firewall.Firewall implements
// it.
type Firewall interface {
	// Scan scans one input; the verdict's action says what to do with it.
	Scan(ctx context.Context, in firewall.Input) (firewall.Verdict, error)
	// ScanOutput scans a model's answer, including for leaked canaries.
	ScanOutput(ctx context.Context, text, sessionID string) (firewall.Verdict, error)
	// Locked reports whether the lockdown is active.
	Locked() bool
	// NewCanary mints a canary token watched for in outputs.
	NewCanary(label string) (firewall.Canary, error)
}

// Router answers one turn with the models: local first, escalation behind
// a breaker. *llm.Router implements it.
type Router interface {
	Route(ctx context.Context, req llm.RouteRequest) (*llm.Result, error)
}

// Memory is long-term memory: retrieval within a token budget and writes.
// *rag.Retriever implements it.
type Memory interface {
	Retrieve(ctx context.Context, q rag.Query) (*rag.Result, error)
	Remember(ctx context.Context, id, text string, m rag.Memory) (string, error)
}

// VRAM arbitrates GPU memory between local models: Acquire returns a
// release function to call when the inference is over. FromMutex adapts a
// *vram.Mutex.
type VRAM interface {
	Acquire(ctx context.Context, model string) (release func(), err error)
}

// ToolResult is the output of one tool call.
type ToolResult struct {
	// Text is what the tool returned; it goes through the firewall before
	// the model sees it.
	Text string
	// Source is where the text comes from for the firewall and for memory:
	// firewall.SourceTool (an MCP tool; the default when empty) or
	// firewall.SourceSkill (a skill's output).
	Source firewall.Source
}

// Tools are the tools the model may call in a turn (MCP tools, active
// skills). A nil Tools means the model gets none.
type Tools interface {
	// Catalog returns the tools offered this turn and a short text
	// describing them for the system prompt ("" for none).
	Catalog(ctx context.Context) ([]llm.Tool, string, error)
	// Call runs one tool call. An error is reported to the model as a
	// failed call, never to the user as internal text.
	Call(ctx context.Context, call llm.ToolCall) (ToolResult, error)
}

// Tokens records the tokens each model used (the token tracker). Errors
// are logged and never fail a turn.
type Tokens interface {
	Count(ctx context.Context, model string, u llm.Usage) error
}

// Config configures an Orchestrator. Zero fields take the defaults above.
type Config struct {
	// LocalModel is the local model's name, the VRAM lease's key
	// (TALOS_OLLAMA_MODEL).
	LocalModel      string
	SessionTimeout  time.Duration
	HistoryMessages int
	MemoryBudget    int
	MaxSteps        int
	MaxMessageBytes int
	MaxSessions     int
	ToolTimeout     time.Duration
	// Protected are texts no answer may copy: the system prompts. An
	// answer holding LeakWindow letters and digits in a row of one of them
	// (or the canary) is withheld, and streaming stops before the copy.
	Protected []string
	// NoWriteBack turns off writing the turn into long-term memory.
	NoWriteBack bool
	// Logger receives operational lines (tier 2); nil discards them.
	Logger *slog.Logger
	// Audit receives one AuditEvent record per turn (tier 1); nil writes
	// none.
	Audit *slog.Logger
}

// Deps are what the loop composes. Router and Firewall are required; the
// rest may be nil (no history, no memory, no VRAM arbitration, no tools, no
// token tracker, no token budget). Unlike Talos's other constructors, which
// take their collaborators as parameters after the Config, New takes them
// as named fields: six of the eight are optional, and a row of nil
// parameters would not say which is which.
type Deps struct {
	Router   Router
	Firewall Firewall
	History  rag.History
	Memory   Memory
	VRAM     VRAM
	Tools    Tools
	Tokens   Tokens
	// Budget, when set, can refuse escalation (a daily token limit): the
	// local answer stands and Reply.Notice says why.
	Budget Budget
}

// Orchestrator runs the chat loop: every turn passes every safeguard in
// order (see the package documentation). It is safe for concurrent use;
// turns of one session run one at a time.
type Orchestrator struct {
	cfg    Config
	d      Deps
	log    *slog.Logger
	canary firewall.Canary
	leaks  *leakIndex

	mu       sync.Mutex
	sessions map[string]*session
}

// New checks cfg and deps and returns an Orchestrator. It mints the canary
// that marks the system prompt.
func New(cfg Config, deps Deps) (*Orchestrator, error) {
	const op = "orchestrator.New"
	var problems []error
	if deps.Router == nil {
		problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, op, "Deps.Router is nil: the loop needs the model router (llm.NewRouter)"))
	}
	if deps.Firewall == nil {
		problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, op, "Deps.Firewall is nil: no turn runs without the prompt-injection firewall (firewall.New)"))
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"SessionTimeout", int64(cfg.SessionTimeout)}, {"HistoryMessages", int64(cfg.HistoryMessages)}, {"MemoryBudget", int64(cfg.MemoryBudget)},
		{"MaxSteps", int64(cfg.MaxSteps)}, {"MaxMessageBytes", int64(cfg.MaxMessageBytes)}, {"MaxSessions", int64(cfg.MaxSessions)}, {"ToolTimeout", int64(cfg.ToolTimeout)}} {
		if f.v < 0 {
			problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, op, "Config.%s is %d: it must be positive, or 0 for the default", f.name, f.v))
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = DefaultSessionTimeout
	}
	if cfg.HistoryMessages == 0 {
		cfg.HistoryMessages = DefaultHistoryMessages
	}
	if cfg.MemoryBudget == 0 {
		cfg.MemoryBudget = DefaultMemoryBudget
	}
	if cfg.MaxSteps == 0 {
		cfg.MaxSteps = DefaultMaxSteps
	}
	if cfg.MaxMessageBytes == 0 {
		cfg.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	if cfg.ToolTimeout == 0 {
		cfg.ToolTimeout = DefaultToolTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c, err := deps.Firewall.NewCanary("system-prompt")
	if err != nil {
		return nil, err
	}
	return &Orchestrator{cfg: cfg, d: deps, log: log, canary: c, leaks: newLeakIndex(c.Token, cfg.Protected), sessions: map[string]*session{}}, nil
}

// Turn is one user message.
type Turn struct {
	// SessionID continues a session; "" starts a new one (Reply.SessionID
	// names it).
	SessionID string
	Message   string
	// Stream, when set, receives the answer's text as it is generated.
	// Text that could be the escalate marker or a leaked canary is held
	// back until it is known not to be. Reply.Answer is authoritative:
	// when Reply.StreamedAll is false it differs from what was streamed
	// (a fallback, a withheld answer, text before a tool call). Returning
	// an error stops the turn.
	Stream func(delta string) error
}

// Outcome is how a turn ended.
type Outcome string

// Outcomes of a turn.
const (
	OutcomeAnswered  Outcome = "answered"
	OutcomeBlocked   Outcome = "blocked"   // the firewall refused the user's message
	OutcomeLockdown  Outcome = "lockdown"  // the agent is locked; nothing ran
	OutcomeWithheld  Outcome = "withheld"  // the answer leaked the system prompt
	OutcomeCancelled Outcome = "cancelled" // the caller gave up
	OutcomeFailed    Outcome = "failed"    // a model or the VRAM arbitration failed
)

// ToolCallRecord is one tool call of a turn, as the audit and the caller
// see it.
type ToolCallRecord struct {
	Name    string          `json:"name"`
	Verdict firewall.Action `json:"verdict"`
	Rules   []string        `json:"rules,omitempty"`
	Failed  bool            `json:"failed,omitempty"`
}

// Reply is the outcome of a turn. Answer is always text for the user: the
// model's answer, or a plain explanation of why there is none.
type Reply struct {
	SessionID     string  `json:"session_id"`
	CorrelationID string  `json:"correlation_id"`
	Outcome       Outcome `json:"outcome"`
	Answer        string  `json:"answer"`
	Model         string  `json:"model,omitempty"`
	Escalated     bool    `json:"escalated"`
	Fallback      bool    `json:"fallback"`
	// EscalationReason is why escalation was wanted ("marker",
	// "local-error"), and EscalationFailure why it did not happen: the
	// failure's code and category (for example "T205 CIRCUIT_OPEN"), never
	// its text.
	EscalationReason  string `json:"escalation_reason,omitempty"`
	EscalationFailure string `json:"escalation_failure,omitempty"`
	// Notice is a plain note for the user beside the answer, for example
	// that the daily token limit kept the answer local ("" for none).
	Notice string `json:"notice,omitempty"`
	// Code is the talos error code of a failed turn ("" when answered).
	Code  talos.Code `json:"code,omitempty"`
	Usage llm.Usage  `json:"usage"`
	// Memories is the number of retrieved memories in the prompt.
	Memories int              `json:"memories"`
	Tools    []ToolCallRecord `json:"tools,omitempty"`
	// Flagged is true when the firewall flagged this session: it no longer
	// escalates to the cloud model.
	Flagged bool `json:"flagged"`
	// StreamedAll is true when the streamed deltas add up to Answer.
	StreamedAll bool `json:"streamed_all"`
}

// Errors of Chat for a bad turn (not failures of the loop, which are
// answered in the Reply).
var (
	// ErrNoSession: the turn names a session that does not exist or expired.
	ErrNoSession = errors.New("no such session")
	// ErrTooManySessions: MaxSessions sessions are open.
	ErrTooManySessions = errors.New("too many open sessions")
)

// UserMessage is the text of a Chat error for the person who sent the
// turn: the message of a *talos.Error without its code and operation
// (which name internals), else the error's text.
func UserMessage(err error) string {
	var te *talos.Error
	if errors.As(err, &te) && te.Message != "" {
		return te.Message
	}
	return err.Error()
}

// ValidateMessage checks a user message: UTF-8, not blank, at most max
// bytes, no control characters but tab and newlines. The error names the
// problem and what is allowed.
func ValidateMessage(msg string, max int) error {
	const op = "orchestrator.Chat"
	var problems []string
	if !utf8.ValidString(msg) {
		problems = append(problems, "message is not valid UTF-8 text")
	}
	if strings.TrimSpace(msg) == "" {
		problems = append(problems, "message is empty: write some text")
	}
	if len(msg) > max {
		problems = append(problems, fmt.Sprintf("message has %d bytes: at most %d are allowed", len(msg), max))
	}
	if i := strings.IndexFunc(msg, func(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f }); i >= 0 {
		problems = append(problems, fmt.Sprintf("message has control character %q at byte %d: only text, tabs and newlines are allowed", msg[i:i+1], i))
	}
	if len(problems) > 0 {
		return talos.Errorf(talos.CodeConfigInvalid, op, "%s", strings.Join(problems, "; "))
	}
	return nil
}

// Chat runs one turn. It returns an error only for a bad turn: an invalid
// message or session id (talos T010), ErrNoSession, ErrTooManySessions.
// Everything that goes wrong inside the loop is answered in the Reply with a
// plain message, logged on tier 2 with the correlation ID of ctx (a new one
// when ctx has none; Reply.CorrelationID names it), and audited.
func (o *Orchestrator) Chat(ctx context.Context, t Turn) (*Reply, error) {
	ctx, cid := talos.EnsureCorrelationID(ctx)
	if err := ValidateMessage(t.Message, o.cfg.MaxMessageBytes); err != nil {
		return nil, err
	}
	s, err := o.session(t.SessionID)
	if err != nil {
		return nil, err
	}
	defer o.release(s)
	r := &Reply{SessionID: s.id, CorrelationID: cid}
	began := time.Now()
	tr := &turnState{o: o, s: s, r: r, msg: t.Message, began: began}
	if err := s.lock(ctx); err != nil {
		tr.fail(ctx, OutcomeCancelled, err)
	} else {
		tr.run(ctx, t.Stream)
		s.unlock()
	}
	r.Flagged = o.flagged(s)
	o.audit(ctx, tr)
	return r, nil
}
