package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/vram"
)

// chatDefaultTurnTimeout bounds one turn of `talos chat`.
const chatDefaultTurnTimeout = 5 * time.Minute

// agentUses reports whether a configuration problem about v concerns the
// agent that host.OpenAgent builds (for ask and chat): the variables it
// reads, and the two files as a whole. The Gemini key and model matter only
// when Gemini will be used.
func agentUses(v string, gemini bool) bool {
	switch v {
	case "TALOS_OLLAMA_URL", "TALOS_OLLAMA_MODEL", "TALOS_REDIS_URL", "TALOS_PROMPT_LOCAL", "TALOS_PROMPT_ESCALATION",
		"TALOS_GEMINI_ENABLED", "TALOS_CHROMA_URL", "CHROMADB_MAX_VECTORS", "CHROMADB_MAX_DIMENSIONS",
		"MEMORY_CONTEXT_WINDOW", "MEMORY_SIMILARITY_THRESHOLD", "SESSION_TIMEOUT", "TOKEN_DAILY_LIMIT", config.ConfigFileName, config.EnvFileName:
		return true
	case "GEMINI_API_KEY", "GEMINI_MODEL_NAME", "TALOS_GEMINI_URL":
		return gemini
	}
	return false
}

// turnError is the error of a turn that was not answered: the plain
// message the user sees, with the code when there is one.
func turnError(rep *orchestrator.Reply) error {
	if rep.Code != "" {
		return fmt.Errorf("%s [%s]", rep.Answer, rep.Code.Error())
	}
	return errors.New(rep.Answer)
}

func newChatCmd() *cobra.Command {
	var (
		geminiURL string
		localOnly bool
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "chat",
		Short: "Talk to the agent in the terminal: one session, answers streamed as they are written",
		Long: `Chat opens the agent (the same chat loop talos run serves: firewall, history, memory,
models, leak check, audit) and reads one message per line from standard input, streaming
each answer as it is generated. The session keeps the conversation's history until you
leave (an empty line is ignored; /exit, /quit or end of input leaves). A refused or failed
turn prints why in plain words and the conversation goes on.

With a daemon running for the home and no flag choosing adapters, chat talks to the
daemon's chat API (as talos ask does); otherwise it builds the agent in this process.
Settings come from the configuration like talos ask's; --local-only never escalates to
Gemini. Exit codes: 0 on leaving, 2 invalid settings.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return withExit(2, fmt.Errorf("--timeout = %s is invalid: must be positive", timeout))
			}
			cfg, err := askConfig(cmd, localOnly)
			if err != nil {
				return err
			}
			if dc := runningDaemon(cmd, cfg); dc != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "talos chat: talking to the daemon at %s\n", dc.addr)
				return chatREPL(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), dc, timeout)
			}
			agent, err := host.OpenAgent(cmd.Context(), cfg, host.AgentOptions{LocalOnly: localOnly, GeminiBaseURL: geminiURL})
			if err != nil {
				return withExit(2, err)
			}
			defer agent.Close()
			return chatREPL(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), agent.Orchestrator, timeout)
		},
	}
	f := cmd.Flags()
	f.String("ollama-url", "", "Ollama server URL (overrides TALOS_OLLAMA_URL)")
	f.String("model", "", "local model name (overrides TALOS_OLLAMA_MODEL)")
	f.StringVar(&geminiURL, "gemini-url", "", "Gemini API base URL override (a proxy or a test server)")
	f.String("gemini-model", "", "Gemini model (overrides GEMINI_MODEL_NAME)")
	f.String("redis-url", "", "Redis URL (overrides TALOS_REDIS_URL)")
	f.String("prompt-local", "", "file with the local system prompt, or \"default\" (overrides TALOS_PROMPT_LOCAL)")
	f.String("prompt-escalation", "", "file with the escalation system prompt, or \"default\" (overrides TALOS_PROMPT_ESCALATION)")
	f.BoolVar(&localOnly, "local-only", false, "never escalate to Gemini, even with TALOS_GEMINI_ENABLED=true")
	f.Bool("in-process", false, "build the agent in this process even when a daemon is running")
	f.DurationVar(&timeout, "timeout", chatDefaultTurnTimeout, "give up on one answer after this long")
	return cmd
}

// chatREPL reads messages from in, one per line, and writes streamed
// answers to out, all in one session.
func chatREPL(ctx context.Context, in io.Reader, out io.Writer, chat interface {
	Chat(context.Context, orchestrator.Turn) (*orchestrator.Reply, error)
}, timeout time.Duration) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), orchestrator.DefaultMaxMessageBytes+1)
	session := ""
	fmt.Fprintln(out, "talos chat: type a message and press Enter; /exit leaves.")
	for {
		fmt.Fprint(out, "> ")
		if !sc.Scan() {
			fmt.Fprintln(out)
			if err := sc.Err(); err != nil {
				return withExit(2, fmt.Errorf("reading standard input: %w (a line may hold at most %d bytes)", err, orchestrator.DefaultMaxMessageBytes))
			}
			return nil
		}
		line := strings.TrimSpace(sc.Text())
		switch line {
		case "":
			continue
		case "/exit", "/quit":
			return nil
		}
		streamed := false
		turn := func() (*orchestrator.Reply, error) {
			tctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			return chat.Chat(tctx, orchestrator.Turn{SessionID: session, Message: line, Stream: func(d string) error {
				streamed = true
				_, err := io.WriteString(out, d)
				return err
			}})
		}
		rep, err := turn()
		if errors.Is(err, orchestrator.ErrNoSession) && session != "" {
			// It expired (SESSION_TIMEOUT) or the daemon restarted: the
			// message goes to a new session.
			fmt.Fprintln(out, "talos: the session expired; this message starts a new one.")
			session = ""
			rep, err = turn()
		}
		if err != nil {
			fmt.Fprintln(out, "talos:", orchestrator.UserMessage(err))
			continue
		}
		session = rep.SessionID
		switch {
		case rep.Outcome != orchestrator.OutcomeAnswered:
			if streamed {
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, "talos:", rep.Answer)
		case !rep.StreamedAll:
			// What was streamed is not the answer (a fallback, or text
			// before a tool call): print the answer itself.
			if streamed {
				fmt.Fprintln(out)
			}
			fmt.Fprintln(out, rep.Answer)
		default:
			fmt.Fprintln(out)
		}
		if rep.Notice != "" {
			fmt.Fprintln(out, "talos:", rep.Notice)
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// daemonAgent is the agent `talos run` serves. Its boot step builds it
// (fatal: a daemon that cannot chat is not ready), after the service steps
// and before the health server starts; its handler serves the chat API
// (POST /api/v1/chat, operator credentials) and its check lists exactly the
// adapters in use on /health (degraded while the firewall is in lockdown);
// the lockdown's unlock and re-issue are served beside the chat API.
type daemonAgent struct {
	cfg        *config.Config
	log, audit *slog.Logger
	vramOf     func() *vram.Mutex
	diskFull   func() bool // the disk monitor's emergency level; nil: never full

	mu       sync.RWMutex
	agent    *host.Agent
	handlers map[string]http.Handler
	stop     chan struct{}
}

// sessionSweep is how often the daemon drops sessions idle for
// SESSION_TIMEOUT (turns also drop them as they come).
const sessionSweep = time.Minute

// agentStepName is the boot step and the /health check of the agent.
const agentStepName = "agent"

func (a *daemonAgent) step() boot.Step {
	return boot.Step{Name: agentStepName, Timeout: 60 * time.Second, Fatal: true, Run: func(ctx context.Context) (string, error) {
		agent, err := host.OpenAgent(ctx, a.cfg, host.AgentOptions{Log: a.log, Audit: a.audit, VRAM: a.vramOf, DiskFull: a.diskFull})
		if err != nil {
			return "", err
		}
		acfg := chatapi.Config{User: a.cfg.BasicAuthUser, Pass: a.cfg.BasicAuthPass.Value(), Logger: a.log,
			RateLimit: a.cfg.APIRateLimitMax, RateWindow: a.cfg.APIRateLimitWindow}
		api, err := chatapi.New(acfg, agent.Orchestrator)
		if err != nil {
			agent.Close()
			return "", err
		}
		hs, err := chatapi.NewLockdownHandlers(acfg, agent.Lockdown)
		if err != nil {
			agent.Close()
			return "", err
		}
		hs[chatapi.Path] = api
		if hs[chatapi.TokensPath], err = chatapi.NewTokensHandler(acfg, agent.Tokens); err != nil {
			agent.Close()
			return "", err
		}
		a.mu.Lock()
		a.agent, a.handlers, a.stop = agent, hs, make(chan struct{})
		a.mu.Unlock()
		go sweepSessions(agent.Orchestrator, a.stop)
		return agent.Describe(), nil
	}}
}

func (a *daemonAgent) get() *host.Agent {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.agent
}

// memory is the open agent's long-term memory store, for the maintenance
// phases to work on; nil while a is nil or the agent is not built.
func (a *daemonAgent) memory() *host.Memory {
	if a == nil {
		return nil
	}
	ag := a.get()
	if ag == nil {
		return nil
	}
	return &host.Memory{Store: ag.Memory, Where: ag.MemoryWhere, Pruner: ag.Pruner}
}

// Handlers are the agent's endpoints for the health server: the chat API,
// the lockdown's unlock and re-issue and the token summary, each answering
// 503 until the agent is built.
func (a *daemonAgent) Handlers() map[string]http.Handler {
	out := map[string]http.Handler{}
	for _, p := range []string{chatapi.Path, chatapi.UnlockPath, chatapi.ReissuePath, chatapi.TokensPath} {
		out[p] = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			a.mu.RLock()
			h := a.handlers[p]
			a.mu.RUnlock()
			if h == nil {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusServiceUnavailable)
				fmt.Fprintln(w, `{"error":"the agent is not built yet: the daemon is still booting"}`)
				return
			}
			h.ServeHTTP(w, r)
		})
	}
	return out
}

func (a *daemonAgent) check() health.Check {
	return health.Check{Name: agentStepName, Func: func(ctx context.Context) (string, error) {
		agent := a.get()
		if agent == nil {
			return "", errors.New("the agent was not built")
		}
		detail := agent.ModelStatus(ctx, a.cfg) + "; " + agent.Describe()
		if agent.Firewall.Locked() {
			st := agent.Lockdown.State()
			return detail, health.Warnf("security lockdown since %s (%s): chat turns are refused until the unlock code in %s is entered",
				st.TriggeredAt.UTC().Format(time.RFC3339), st.Reason, host.UnlockCodeFile)
		}
		return detail, nil
	}}
}

// Close stops the session sweep and releases the agent.
func (a *daemonAgent) Close() {
	a.mu.Lock()
	agent, stop := a.agent, a.stop
	a.agent, a.stop = nil, nil // nothing hands out the closed agent's parts
	a.mu.Unlock()
	if stop != nil {
		close(stop)
	}
	if agent != nil {
		agent.Close()
	}
}

func sweepSessions(o *orchestrator.Orchestrator, stop <-chan struct{}) {
	t := time.NewTicker(sessionSweep)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			o.Expire()
		case <-stop:
			return
		}
	}
}
