package host

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/atomicfile"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/redisstore"
	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/gemini"
	"github.com/talos-ironclad/talos/llm/ollama"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/hashembed"
	ragredis "github.com/talos-ironclad/talos/rag/redis"
	"github.com/talos-ironclad/talos/vram"
)

// Files of the agent, relative to Home.
const (
	// LockdownStateFile keeps the firewall's lockdown across restarts.
	LockdownStateFile = "data/lockdown.json"
	// UnlockCodeFile is where a lockdown's unlock code is delivered,
	// readable by the owner only (out of band: never a log).
	UnlockCodeFile = "keys/unlock-code.txt"
	// EscalationBreakerName names the breaker guarding the cloud model; its
	// state is shared through Redis between the daemon and the CLI.
	EscalationBreakerName = "gemini"
)

// AgentOptions are what the caller of OpenAgent decides.
type AgentOptions struct {
	// LocalOnly never builds the cloud model, even with
	// TALOS_GEMINI_ENABLED=true (talos ask --local-only).
	LocalOnly bool
	// GeminiBaseURL overrides the Gemini API endpoint (a proxy, a test
	// server); empty means TALOS_GEMINI_URL, then Google's.
	GeminiBaseURL string
	// VRAM returns the daemon's VRAM mutex, built at boot when a GPU is
	// found; nil (or returning nil) means no arbitration.
	VRAM func() *vram.Mutex
	// Console receives unlock codes beside UnlockCodeFile (the daemon's
	// terminal); nil writes the file only.
	Console io.Writer
	// Log receives operational lines (tier 2); Audit the per-turn audit
	// records (tier 1). Nil discards.
	Log, Audit *slog.Logger
	// Local replaces the Ollama model (tests, examples); Remote the Gemini
	// one, used only when the cloud model is enabled.
	Local, Remote llm.Model
	// DiskFull, when set and true, refuses new memories (T103): the disk
	// monitor's emergency level.
	DiskFull func() bool
	// SkillImage is the sandbox image the genesis skills run in; empty
	// means sandbox.DefaultImage.
	SkillImage string
}

// Adapter is one component the agent uses, as /health reports it.
type Adapter struct {
	// Role is what it is for: local-model, escalation-model, breaker,
	// firewall, lockdown, history, memory, embedder, vram, tools, tokens.
	Role string `json:"role"`
	// Name is the adapter (ollama, gemini, redis, memory, chroma, chromem…).
	Name string `json:"name"`
	// Detail says where it is and how it is set up; never a secret.
	Detail string `json:"detail"`
}

// Agent is the chat loop and every adapter it runs on, built once from the
// configuration. The daemon serves it; `talos ask` and `talos chat` use it.
type Agent struct {
	Orchestrator *orchestrator.Orchestrator
	Router       *llm.Router
	Firewall     *firewall.Firewall
	Lockdown     *firewall.Lockdown
	// Tokens is the token tracker: counts per model and UTC day (in
	// Redis when TALOS_REDIS_URL is set) and TOKEN_DAILY_LIMIT.
	Tokens *orchestrator.Tracker
	// Local is the local model (Ollama unless AgentOptions.Local).
	Local llm.Model
	// Memory is the long-term memory: its store (MemoryWhere says which,
	// without secrets), the retriever the turns search it with, and its
	// pruner (archive and restore).
	Memory      rag.Store
	MemoryWhere string
	Retriever   *rag.Retriever
	Pruner      *prune.Pruner
	// MCP is the MCP host whose tools the agent offers; nil without
	// mcp_servers.
	MCP *mcphost.Host
	// Adapters lists what the agent uses, in a stable order.
	Adapters []Adapter

	closers []func() error
	once    sync.Once
}

// Close releases the agent's connections and stores.
func (a *Agent) Close() error {
	var errs []error
	a.once.Do(func() {
		for i := len(a.closers) - 1; i >= 0; i-- {
			errs = append(errs, a.closers[i]())
		}
	})
	return errors.Join(errs...)
}

// ModelStatus asks the local model to describe itself and returns a short
// note for /health: the model and its context window, or that it does not
// answer and how to fix that (start Ollama or set TALOS_OLLAMA_URL, pull
// the model).
func (a *Agent) ModelStatus(ctx context.Context, cfg *config.Config) string {
	ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	info, err := a.Local.Info(ictx)
	if err != nil {
		where := "TALOS_OLLAMA_URL"
		if cfg.OllamaURL == "" {
			where = "Ollama's default port " + DefaultOllamaURL + " (TALOS_OLLAMA_URL is unset)"
		}
		return fmt.Sprintf("the local model %s does not answer at %s: chat turns fail until it does; start Ollama there or set TALOS_OLLAMA_URL, then `ollama pull %s`",
			cfg.OllamaModel, where, cfg.OllamaModel)
	}
	if info.ContextLength > 0 {
		return fmt.Sprintf("the local model %s answers (context %d tokens)", info.Name, info.ContextLength)
	}
	return fmt.Sprintf("the local model %s answers", info.Name)
}

// Describe is the adapters as one line, "role=name (detail); …".
func (a *Agent) Describe() string {
	parts := make([]string, len(a.Adapters))
	for i, ad := range a.Adapters {
		parts[i] = ad.Role + "=" + ad.Name + " (" + ad.Detail + ")"
	}
	return strings.Join(parts, "; ")
}

// OpenAgent builds the agent of cfg: the system prompts (checked against
// their budget), the local model (Ollama at TALOS_OLLAMA_URL, else its
// default local port), the cloud model behind the escalation breaker
// (only with TALOS_GEMINI_ENABLED=true; breaker state in Redis when
// TALOS_REDIS_URL is set), the firewall with its persisted lockdown
// (LockdownStateFile, codes to UnlockCodeFile), session history (Redis, else
// in memory), long-term memory (Chroma at TALOS_CHROMA_URL, else the
// embedded store that `talos memory` uses), the VRAM lease of opts.VRAM, an
// in-process token counter, and the orchestrator over all of them with
// SESSION_TIMEOUT and MEMORY_CONTEXT_WINDOW. Close releases it all.
func OpenAgent(ctx context.Context, cfg *config.Config, opts AgentOptions) (*Agent, error) {
	a := &Agent{}
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()
	if err := a.build(ctx, cfg, opts); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

func (a *Agent) add(role, name, detail string) {
	a.Adapters = append(a.Adapters, Adapter{Role: role, Name: name, Detail: detail})
}

func (a *Agent) build(ctx context.Context, cfg *config.Config, opts AgentOptions) error {
	const op = "host.OpenAgent"
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	// Quiet: the daemon's prompts step and ask's output report them.
	prompts, _, err := LoadPrompts(cfg, nil)
	if err != nil {
		return err
	}

	// Models.
	local := opts.Local
	if local == nil {
		url, where := localModelURL(cfg)
		m, err := ollama.New(ollama.Config{BaseURL: url, Model: cfg.OllamaModel})
		if err != nil {
			return err
		}
		local = m
		a.add("local-model", "ollama", fmt.Sprintf("%s at %s (%s)", cfg.OllamaModel, redact.URL(url), where))
	} else {
		a.add("local-model", "custom", describeModel(ctx, local))
	}
	a.Local = local
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		o, err := redis.ParseURL(cfg.RedisURL)
		if err != nil {
			return talos.E(talos.CodeRedis, op, fmt.Sprintf("TALOS_REDIS_URL = %q does not parse", redact.URL(cfg.RedisURL)), err)
		}
		// A Redis outage must not hold every turn for seconds (go-redis
		// tries 4 times with 5 dials each by default): one retry and one
		// dial per try, unless the URL asks for more.
		if o.MaxRetries == 0 {
			o.MaxRetries = 1
		}
		if o.DialerRetries == 0 {
			o.DialerRetries = 1
		}
		rdb = redis.NewClient(o)
		a.closers = append(a.closers, rdb.Close)
	}
	var remote llm.Model
	var br *breaker.Breaker
	if cfg.GeminiEnabled && !opts.LocalOnly {
		remote = opts.Remote
		if remote == nil {
			base := opts.GeminiBaseURL
			if base == "" {
				base = cfg.GeminiURL
			}
			g, err := gemini.New(ctx, gemini.Config{APIKey: cfg.GeminiAPIKey.Value(), BaseURL: base, Model: cfg.GeminiModelName})
			if err != nil {
				return err
			}
			remote = g
			where := "Google's endpoint"
			if base != "" {
				where = redact.URL(base)
			}
			a.add("escalation-model", "gemini", cfg.GeminiModelName+" at "+where+" (TALOS_GEMINI_ENABLED=true)")
		} else {
			a.add("escalation-model", "custom", describeModel(ctx, remote))
		}
		var store breaker.Store
		where := "state in this process"
		if rdb != nil {
			if store, err = redisstore.New(redisstore.Config{}, rdb); err != nil {
				return err
			}
			where = "state in Redis at " + redact.URL(cfg.RedisURL)
		}
		if br, err = breaker.New(breaker.Config{Name: EscalationBreakerName, Classifier: llm.Classify, Logger: log}, store); err != nil {
			return err
		}
		if err := br.Sync(ctx); err != nil {
			log.Warn("the escalation breaker's shared state could not be read; starting from this process's", "err", err)
		}
		a.add("breaker", EscalationBreakerName, where)
	} else {
		why := "TALOS_GEMINI_ENABLED is not true"
		if opts.LocalOnly {
			why = "local only"
		}
		a.add("escalation-model", "none", why+": every answer is local")
	}
	router, err := llm.NewRouter(llm.RouterConfig{Prompts: prompts, Logger: log}, local, remote, br)
	if err != nil {
		return err
	}
	a.Router = router

	// Firewall and its lockdown; their alerts go to the audit log.
	alerts, err := auditAlerts(opts.Audit, log)
	if err != nil {
		return err
	}
	lock, err := openLockdown(ctx, cfg, opts.Console, alerts, log)
	if err != nil {
		return err
	}
	fw, err := firewall.New(firewall.Config{Logger: log}, lock, alerts)
	if err != nil {
		return err
	}
	a.Firewall, a.Lockdown = fw, lock
	a.add("firewall", "rules+classifier", "default rules and the embedded classifier")
	state := "not locked"
	if lock.Locked() {
		state = "LOCKED since " + lock.State().TriggeredAt.UTC().Format(time.RFC3339)
	}
	a.add("lockdown", "file", fmt.Sprintf("%s (%s; unlock codes to %s)", LockdownStateFile, state, UnlockCodeFile))

	// Short-term history.
	// A session's history lives as long as the session.
	hcfg := rag.HistoryConfig{Limit: cfg.MemoryContextWindow, TTL: cfg.SessionTimeout}
	var history rag.History
	if rdb != nil {
		h, err := ragredis.New(hcfg, rdb)
		if err != nil {
			return err
		}
		history = h
		a.add("history", "redis", redact.URL(cfg.RedisURL))
	} else {
		h, err := rag.NewMemoryHistory(hcfg)
		if err != nil {
			return err
		}
		history = h
		a.add("history", "memory", "in this process (TALOS_REDIS_URL unset): lost on restart")
	}

	// Long-term memory.
	emb, err := hashembed.New(hashembed.Config{})
	if err != nil {
		return err
	}
	mem, err := OpenMemory(ctx, cfg, MemoryOptions{Dimension: emb.Dimension()})
	if err != nil {
		return err
	}
	var store rag.Store = mem.Store
	if opts.DiskFull != nil {
		store = diskGuard{Store: mem.Store, full: opts.DiskFull}
	}
	kind := "sql"
	switch {
	case cfg.ChromaURL != "":
		kind = "chroma"
	case cfg.MemoryStore == config.MemoryStoreChromem:
		kind = "chromem"
	}
	a.add("memory", kind, mem.Where)
	a.closers = append(a.closers, mem.Close)
	if err := rag.CheckDimension(ctx, store, emb); err != nil {
		return err
	}
	a.add("embedder", "hashembed", fmt.Sprintf("%d dimensions", emb.Dimension()))
	pruner, err := prune.New(prune.Config{Ceiling: cfg.ChromaMaxVectors, ArchivePath: filepath.Join(cfg.Home, filepath.FromSlash(MemoryArchiveFile))}, store)
	if err != nil {
		return err
	}
	threshold := cfg.MemorySimilarityThreshold
	ret, err := rag.NewRetriever(rag.RetrieverConfig{Capacity: cfg.ChromaMaxVectors, Threshold: threshold, Logger: log}, store, emb, history, pruner)
	if err != nil {
		return err
	}
	a.Memory, a.MemoryWhere, a.Retriever, a.Pruner = store, mem.Where, ret, pruner

	// VRAM, tools, tokens.
	var vr orchestrator.VRAM
	if opts.VRAM != nil {
		vr = orchestrator.FromMutex(opts.VRAM)
		a.add("vram", "mutex", "a lease on "+cfg.OllamaModel+" around each inference when the daemon found a GPU")
	} else {
		a.add("vram", "none", "no VRAM arbitration in this process")
	}
	var tools orchestrator.Tools
	mh, err := OpenMCP(ctx, cfg, opts.Audit, log)
	if err != nil {
		return err
	}
	if mh != nil {
		a.closers = append(a.closers, mh.Close)
		a.MCP = mh
		tools = MCPTools{Host: mh}
		a.add("tools", "mcp", fmt.Sprintf("%d tools from the mcp_servers of %s, every call through the MCP pipeline and the firewall", len(mh.Catalog().Tools), config.ConfigFileName))
	} else {
		a.add("tools", "none", "no mcp_servers in "+config.ConfigFileName)
	}
	// The genesis skills: admitted at every boot (idempotent, never fatal),
	// the active ones offered as tools.
	gt, grep, err := OpenGenesisTools(ctx, cfg, opts.SkillImage, opts.Audit, log)
	if err != nil {
		log.WarnContext(ctx, "no genesis skill is offered to the model", "err", err)
		a.add("skills", "none", err.Error())
	} else {
		a.closers = append(a.closers, gt.Close)
		if tools != nil {
			tools = MultiTools{tools, gt}
		} else {
			tools = gt
		}
		a.add("skills", "genesis", fmt.Sprintf("%s active of %d admitted at TRUST_LEVEL %d, each call in a fresh sandbox", strings.Join(gt.Runner.Names(), ", "), len(grep.Skills), cfg.TrustLevel))
	}
	var trdb redis.UniversalClient
	if rdb != nil {
		trdb = rdb
	}
	if a.Tokens, err = orchestrator.NewTracker(orchestrator.TrackerConfig{DailyLimit: cfg.TokenDailyLimit, Logger: log}, trdb); err != nil {
		return err
	}
	limit := fmt.Sprintf("escalation refused from %d tokens a day (TOKEN_DAILY_LIMIT)", cfg.TokenDailyLimit)
	if rdb != nil {
		a.add("tokens", "redis", "per model and UTC day under talos:tokens:*, kept 7 days, shared by every process, in this process while Redis fails; "+limit)
	} else {
		a.add("tokens", "memory", "per model and UTC day in this process, kept 7 days; "+limit)
	}

	o, err := orchestrator.New(orchestrator.Config{
		LocalModel:      cfg.OllamaModel,
		SessionTimeout:  cfg.SessionTimeout,
		HistoryMessages: cfg.MemoryContextWindow,
		Protected:       systemPrompts(prompts),
		Logger:          log,
		Audit:           opts.Audit,
	}, orchestrator.Deps{Router: router, Firewall: fw, History: history, Memory: ret, VRAM: vr, Tokens: a.Tokens, Budget: a.Tokens, Tools: tools})
	if err != nil {
		return err
	}
	a.Orchestrator = o
	return nil
}

// OpenLockdown opens the firewall's persisted lockdown of cfg: state in
// LockdownStateFile, codes hashed with the home's "lockdown" key and
// delivered to UnlockCodeFile (0600) and to console when not nil. The
// agent's firewall triggers it; `talos unlock` opens it directly when no
// daemon runs.
func OpenLockdown(ctx context.Context, cfg *config.Config, console io.Writer, log *slog.Logger) (*firewall.Lockdown, error) {
	return openLockdown(ctx, cfg, console, nil, log)
}

func openLockdown(ctx context.Context, cfg *config.Config, console io.Writer, alerts *firewall.AlertRouter, log *slog.Logger) (*firewall.Lockdown, error) {
	const op = "host.OpenLockdown"
	key, err := Key(cfg.Home, "lockdown")
	if err != nil {
		return nil, err
	}
	lpath := filepath.Join(cfg.Home, filepath.FromSlash(LockdownStateFile))
	if err := os.MkdirAll(filepath.Dir(lpath), 0o750); err != nil {
		return nil, talos.E(talos.CodeDirPermissions, op, "cannot create the directory of "+LockdownStateFile+"; run talos init", err)
	}
	lstore, err := firewall.NewFileStore(lpath)
	if err != nil {
		return nil, err
	}
	notifier := &unlockNotifier{path: filepath.Join(cfg.Home, filepath.FromSlash(UnlockCodeFile)), console: console}
	return firewall.NewLockdown(ctx, firewall.LockdownConfig{Key: key, Logger: log}, lstore, notifier, alerts)
}

// FirewallAlertEvent is the audit event of a firewall alert: a detection
// or a lockdown, with its rule IDs but never the text that matched.
const FirewallAlertEvent = "firewall_alert"

// auditAlerts routes every firewall alert to the audit log; nil when there
// is no audit log.
func auditAlerts(audit, log *slog.Logger) (*firewall.AlertRouter, error) {
	if audit == nil {
		return nil, nil
	}
	return firewall.NewAlertRouter(firewall.AlertRouterConfig{Logger: log}, firewall.Route{Name: "audit", MinSeverity: talos.SeverityInfo,
		Channel: firewall.ChannelFunc(func(ctx context.Context, a firewall.Alert) error {
			rules := make([]string, 0, len(a.Detections))
			for _, d := range a.Detections {
				rules = append(rules, d.RuleID)
			}
			tlog.Audit(ctx, audit, FirewallAlertEvent, slog.String("alert_id", a.ID), slog.String("severity", a.Severity.String()),
				slog.String("title", a.Title), slog.String("rules", strings.Join(rules, ",")), slog.String("action", a.ActionTaken.String()),
				slog.String("source", a.Context["source"]), slog.String("session", a.Context["session_id"]))
			return nil
		})})
}

func systemPrompts(p *llm.Prompts) []string {
	var out []string
	for _, t := range []llm.Target{llm.TargetLocal, llm.TargetEscalation} {
		if s, err := p.System(t); err == nil {
			out = append(out, s)
		}
	}
	return out
}

func describeModel(ctx context.Context, m llm.Model) string {
	ictx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := m.Info(ictx)
	if err != nil || info.Name == "" {
		return "a model given by the caller"
	}
	return fmt.Sprintf("%s (%s)", info.Name, info.Provider)
}

// unlockNotifier delivers a lockdown's unlock code out of band: into
// UnlockCodeFile (0600) and to the daemon's terminal when there is one.
type unlockNotifier struct {
	path    string
	console io.Writer
	mu      sync.Mutex
}

func (n *unlockNotifier) DeliverUnlockCode(ctx context.Context, u firewall.UnlockNotice) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	line := fmt.Sprintf("TALOS SECURITY LOCKDOWN %s: unlock code %s (valid until %s). Reason: %s\n",
		u.LockdownID, u.Code, u.ExpiresAt.UTC().Format(time.RFC3339), u.Reason)
	err := atomicfile.WriteFile(n.path, []byte(line), 0o600)
	if n.console != nil {
		if _, cerr := io.WriteString(n.console, line); cerr == nil {
			return nil
		}
	}
	return err
}

// diskGuard refuses writes of new memories while the disk is full, so the
// last free space goes to the audit log and the database's own journal.
type diskGuard struct {
	rag.Store
	full func() bool
}

// Upsert implements rag.Store.
func (g diskGuard) Upsert(ctx context.Context, recs []rag.Record) error {
	if g.full() {
		return talos.Errorf(talos.CodeDiskCritical, "host.Memory.Upsert", "the disk is at its emergency level: %d new memories refused until space is freed", len(recs))
	}
	return g.Store.Upsert(ctx, recs)
}

// localModelURL is where the local model is: TALOS_OLLAMA_URL, else Ollama's
// default local port; where says which.
func localModelURL(cfg *config.Config) (url, where string) {
	if cfg.OllamaURL != "" {
		return cfg.OllamaURL, "TALOS_OLLAMA_URL"
	}
	return DefaultOllamaURL, "Ollama's default local port; TALOS_OLLAMA_URL is unset"
}

// DefaultOllamaURL is where the local model is looked for when
// TALOS_OLLAMA_URL is unset: Ollama's default local port. Only tests change
// it (before anything reads it, restoring it after), to an address known to
// refuse, since the machine running them may well serve Ollama there.
var DefaultOllamaURL = ollama.DefaultBaseURL
