package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/llm/ollama"
	"github.com/talos-ironclad/talos/orchestrator"
)

// Defaults of `talos ask`.
const (
	askDefaultTimeout = 2 * time.Minute
	askBreakerName    = host.EscalationBreakerName
)

// askResult is what `talos ask --json` prints.
type askResult struct {
	Answer           string `json:"answer"`
	Model            string `json:"model"`
	Escalated        bool   `json:"escalated"`
	Fallback         bool   `json:"fallback"`
	EscalationReason string `json:"escalation_reason,omitempty"`
	EscalationError  string `json:"escalation_error,omitempty"`
	Notice           string `json:"notice,omitempty"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	TotalTokens      int    `json:"total_tokens"`
	Breaker          string `json:"breaker"`
	BreakerRemaining string `json:"breaker_remaining,omitempty"`
}

// askFlagVars maps each of ask's flags onto the configuration variable it
// overrides (flags > environment > talos.env > config.yaml > defaults).
var askFlagVars = []struct{ flag, variable string }{
	{"ollama-url", "TALOS_OLLAMA_URL"},
	{"model", "TALOS_OLLAMA_MODEL"},
	{"gemini-model", "GEMINI_MODEL_NAME"},
	{"redis-url", "TALOS_REDIS_URL"},
	{"prompt-local", "TALOS_PROMPT_LOCAL"},
	{"prompt-escalation", "TALOS_PROMPT_ESCALATION"},
}

// askUses reports whether a configuration problem about v concerns ask:
// the variables it reads, and the two files as a whole (an unreadable or
// refused file may hold them). The Gemini key and model matter only when
// Gemini will be used.
func askUses(v string, gemini bool) bool { return agentUses(v, gemini) }

// askConfig resolves ask's settings through the configuration, with ask's
// changed flags as overrides. Problems with variables ask does not read (a
// home never initialised has no BASIC_AUTH_PASS) do not stop it; problems
// with the ones it reads are printed like `talos config validate` and exit 2.
func askConfig(cmd *cobra.Command, localOnly bool) (*config.Config, error) {
	overrides := map[string]string{}
	for _, fv := range askFlagVars {
		f := cmd.Flags().Lookup(fv.flag)
		if f == nil || !f.Changed {
			continue
		}
		val := f.Value.String()
		if strings.HasPrefix(fv.variable, "TALOS_PROMPT_") && val != "" && val != config.DefaultPrompt {
			// A path typed on the command line is relative to the working
			// directory, not to the config directory.
			if abs, err := filepath.Abs(val); err == nil {
				val = abs
			}
		}
		overrides[fv.variable] = val
	}
	cfg, err := loadConfig(cmd, overrides)
	var ve *config.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return nil, withExit(2, err)
	}
	if ve != nil {
		gemini := cfg.GeminiEnabled && !localOnly
		mine := reportProblems(cmd.ErrOrStderr(), ve, func(v string) bool { return askUses(v, gemini) })
		if len(mine) > 0 {
			hint := ""
			for _, p := range mine {
				if p.Var == "GEMINI_API_KEY" {
					hint = fmt.Sprintf("; put GEMINI_API_KEY=<your key> in %s (mode 0600), or run with --local-only", cfg.EnvFile())
				}
			}
			return nil, withExit(2, fmt.Errorf("configuration in %s is invalid for talos ask: %d problem(s)%s", cfg.Home, len(mine), hint))
		}
	}
	return cfg, nil
}

func newAskCmd() *cobra.Command {
	var (
		geminiURL         string
		localOnly, asJSON bool
		timeout           time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ask QUESTION",
		Short: "Ask one question: local model first, Gemini behind the circuit breaker",
		Long: `Ask sends one question through the agent's chat loop, the one talos run serves: the
prompt-injection firewall (a lockdown refuses it), memory, then the models: the local Ollama model answers
first; if it asks to escalate ([ESCALATE]) or fails, the question goes to Gemini through
the circuit breaker (never while it is open). It prints the answer, the model that
answered, the tokens used and the breaker's state.

With a daemon running for the home (its ready marker names it) and none of the flags below
that choose adapters, the question goes to the daemon's chat API with the operator
credentials from talos.env. Otherwise the agent is built in this process.

Settings come from the configuration like talos run's (flags > environment > talos.env >
config.yaml > defaults; --home picks the tree): TALOS_OLLAMA_URL (default
` + ollama.DefaultBaseURL + `), TALOS_OLLAMA_MODEL, TALOS_PROMPT_LOCAL and
TALOS_PROMPT_ESCALATION (checked against their token budget), TALOS_REDIS_URL (shares
the breaker with the daemon). Gemini is used only when TALOS_GEMINI_ENABLED=true and
not --local-only; it then needs GEMINI_API_KEY (put it in talos.env; it is never
printed) and uses GEMINI_MODEL_NAME. Problems in settings ask does not read do not
stop it. Exit codes: 0 answered, 1 not answered (the model failed, the firewall refused
the question, or the agent is in lockdown), 2 invalid input or settings.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			question := strings.TrimSpace(args[0])
			if question == "" {
				return withExit(2, errors.New("the question is empty: pass it as one argument, e.g. talos ask \"what is a goroutine?\""))
			}
			if timeout <= 0 {
				return withExit(2, fmt.Errorf("--timeout = %s is invalid: must be positive", timeout))
			}
			cfg, err := askConfig(cmd, localOnly)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()

			// Through the running daemon when there is one; else the same
			// agent built here from the configuration by host.
			if dc := runningDaemon(cmd, cfg); dc != nil {
				rep, err := dc.Chat(ctx, orchestrator.Turn{Message: question})
				if err != nil {
					return withExit(2, err)
				}
				if rep.Outcome != orchestrator.OutcomeAnswered {
					return withExit(1, turnError(rep))
				}
				return printAsk(cmd, rep, nil, asJSON, "the daemon's at "+dc.addr+" (talos health)")
			}
			agent, err := host.OpenAgent(ctx, cfg, host.AgentOptions{LocalOnly: localOnly, GeminiBaseURL: geminiURL})
			if err != nil {
				return withExit(2, err)
			}
			defer agent.Close()
			rep, err := agent.Orchestrator.Chat(ctx, orchestrator.Turn{Message: question})
			if err != nil {
				return withExit(2, err)
			}
			if rep.Outcome != orchestrator.OutcomeAnswered {
				return withExit(1, turnError(rep))
			}
			return printAsk(cmd, rep, agent.Router.Breaker(), asJSON, "")
		},
	}
	f := cmd.Flags()
	f.String("ollama-url", "", "Ollama server URL (overrides TALOS_OLLAMA_URL; default "+ollama.DefaultBaseURL+")")
	f.String("model", "", "local model name (overrides TALOS_OLLAMA_MODEL; default "+config.DefaultOllamaModel+")")
	f.StringVar(&geminiURL, "gemini-url", "", "Gemini API base URL override (a proxy or a test server)")
	f.String("gemini-model", "", "Gemini model (overrides GEMINI_MODEL_NAME; default "+config.DefaultGeminiModelName+")")
	f.String("redis-url", "", "Redis URL to share the breaker's state (overrides TALOS_REDIS_URL; empty: this process only)")
	f.String("prompt-local", "", "file with the local system prompt, or \"default\" (overrides TALOS_PROMPT_LOCAL)")
	f.String("prompt-escalation", "", "file with the escalation system prompt, or \"default\" (overrides TALOS_PROMPT_ESCALATION)")
	f.BoolVar(&localOnly, "local-only", false, "never escalate to Gemini, even with TALOS_GEMINI_ENABLED=true")
	f.Bool("in-process", false, "build the agent in this process even when a daemon is running")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.DurationVar(&timeout, "timeout", askDefaultTimeout, "give up after this long")
	return cmd
}

// printAsk prints the reply; breakerAt, when set, says whose breaker
// guarded the turn (the daemon's).
func printAsk(cmd *cobra.Command, res *orchestrator.Reply, br *breaker.Breaker, asJSON bool, breakerAt string) error {
	out := askResult{
		Answer:           res.Answer,
		Model:            res.Model,
		Escalated:        res.Escalated,
		Fallback:         res.Fallback,
		EscalationReason: res.EscalationReason,
		EscalationError:  res.EscalationFailure,
		Notice:           res.Notice,
		PromptTokens:     res.Usage.PromptTokens,
		CompletionTokens: res.Usage.CompletionTokens,
		TotalTokens:      res.Usage.Total(),
		Breaker:          "disabled (TALOS_GEMINI_ENABLED is not true, or --local-only)",
	}
	if breakerAt != "" {
		out.Breaker = breakerAt
	}
	if br != nil {
		out.Breaker = br.State().String()
		if r := br.Remaining(); r > 0 {
			out.BreakerRemaining = r.Round(time.Second).String()
		}
	}
	w := cmd.OutOrStdout()
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
	route := "local"
	switch {
	case out.Escalated:
		route = "escalated: " + out.EscalationReason
	case out.Fallback:
		route = "local fallback: " + out.EscalationReason
	}
	fmt.Fprintln(w, out.Answer)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "model:   %s (%s)\n", out.Model, route)
	fmt.Fprintf(w, "tokens:  %d prompt + %d completion = %d\n", out.PromptTokens, out.CompletionTokens, out.TotalTokens)
	b := out.Breaker
	if out.BreakerRemaining != "" {
		b += ", retry in " + out.BreakerRemaining
	}
	fmt.Fprintf(w, "breaker: %s\n", b)
	if out.EscalationError != "" {
		fmt.Fprintf(w, "note:    escalation failed: %s\n", out.EscalationError)
	}
	if out.Notice != "" {
		fmt.Fprintf(w, "note:    %s\n", out.Notice)
	}
	return nil
}
