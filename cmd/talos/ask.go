package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/redisstore"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/gemini"
	"github.com/talos-ironclad/talos/llm/ollama"
)

// Defaults of `talos ask`.
const (
	askDefaultModel   = "qwen2.5-coder:7b"
	askDefaultTimeout = 2 * time.Minute
	askBreakerName    = "gemini"
)

// askResult is what `talos ask --json` prints.
type askResult struct {
	Answer           string `json:"answer"`
	Model            string `json:"model"`
	Escalated        bool   `json:"escalated"`
	Fallback         bool   `json:"fallback"`
	EscalationReason string `json:"escalation_reason,omitempty"`
	EscalationError  string `json:"escalation_error,omitempty"`
	PromptTokens     int    `json:"prompt_tokens"`
	CompletionTokens int    `json:"completion_tokens"`
	TotalTokens      int    `json:"total_tokens"`
	Breaker          string `json:"breaker"`
	BreakerRemaining string `json:"breaker_remaining,omitempty"`
}

func newAskCmd() *cobra.Command {
	var (
		ollamaURL, model, geminiURL, geminiModel, redisURL string
		promptLocal, promptEscalation                      string
		noGemini, asJSON                                   bool
		timeout                                            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "ask QUESTION",
		Short: "Ask one question: local model first, Gemini behind the circuit breaker",
		Long: `Ask routes one question through the configured models: the local Ollama model answers
first; if it asks to escalate ([ESCALATE]) or fails, the question goes to Gemini through
the circuit breaker (never while it is open). It prints the answer, the model that
answered, the tokens used and the breaker's state.

Gemini is used only when GEMINI_API_KEY is set in the environment (the key is never
printed). With --redis-url the breaker is shared with the daemon and other processes.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			question := strings.TrimSpace(args[0])
			if question == "" {
				return withExit(2, errors.New("the question is empty: pass it as one argument, e.g. talos ask \"what is a goroutine?\""))
			}
			if timeout <= 0 {
				return withExit(2, fmt.Errorf("--timeout = %s is invalid: must be positive", timeout))
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()

			prompts, err := llm.NewPrompts(llm.PromptConfig{Local: promptLocal, Escalation: promptEscalation})
			if err != nil {
				return withExit(2, err)
			}
			local, err := ollama.New(ollama.Config{BaseURL: ollamaURL, Model: model})
			if err != nil {
				return withExit(2, err)
			}
			var remote llm.Model
			var br *breaker.Breaker
			key := os.Getenv("GEMINI_API_KEY")
			if !noGemini && key != "" {
				g, err := gemini.New(ctx, gemini.Config{APIKey: key, BaseURL: geminiURL, Model: geminiModel})
				if err != nil {
					return withExit(2, err)
				}
				remote = g
				var store breaker.Store
				if redisURL != "" {
					opt, err := redis.ParseURL(redisURL)
					if err != nil {
						return withExit(2, fmt.Errorf("--redis-url = %q is invalid: %w", redisURL, err))
					}
					rdb := redis.NewClient(opt)
					defer rdb.Close()
					store, _ = redisstore.New(redisstore.Config{}, rdb)
				}
				br, err = breaker.New(breaker.Config{Name: askBreakerName, Classifier: llm.Classify}, store)
				if err != nil {
					return withExit(2, err)
				}
				if err := br.Sync(ctx); err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "talos: warning:", err)
				}
			}
			router, err := llm.NewRouter(llm.RouterConfig{Prompts: prompts}, local, remote, br)
			if err != nil {
				return withExit(2, err)
			}
			res, err := router.Route(ctx, llm.RouteRequest{Messages: []llm.Message{{Role: llm.RoleUser, Content: question}}})
			if err != nil {
				return withExit(1, err)
			}
			return printAsk(cmd, res, br, remote != nil, asJSON)
		},
	}
	f := cmd.Flags()
	f.StringVar(&ollamaURL, "ollama-url", envOr("TALOS_OLLAMA_URL", ollama.DefaultBaseURL), "Ollama server URL (env TALOS_OLLAMA_URL)")
	f.StringVar(&model, "model", envOr("TALOS_OLLAMA_MODEL", askDefaultModel), "local model name (env TALOS_OLLAMA_MODEL)")
	f.StringVar(&geminiURL, "gemini-url", "", "Gemini API base URL override (a proxy or a test server)")
	f.StringVar(&geminiModel, "gemini-model", envOr("GEMINI_MODEL_NAME", gemini.DefaultModel), "Gemini model (env GEMINI_MODEL_NAME)")
	f.StringVar(&redisURL, "redis-url", os.Getenv("TALOS_REDIS_URL"), "Redis URL to share the breaker's state (env TALOS_REDIS_URL; empty: this process only)")
	f.StringVar(&promptLocal, "prompt-local", llm.PromptDefault, "file with the local system prompt, or \"default\"")
	f.StringVar(&promptEscalation, "prompt-escalation", llm.PromptDefault, "file with the escalation system prompt, or \"default\"")
	f.BoolVar(&noGemini, "local-only", false, "never escalate to Gemini")
	f.BoolVar(&asJSON, "json", false, "print the result as JSON")
	f.DurationVar(&timeout, "timeout", askDefaultTimeout, "give up after this long")
	return cmd
}

func printAsk(cmd *cobra.Command, res *llm.Result, br *breaker.Breaker, haveRemote, asJSON bool) error {
	out := askResult{
		Answer:           res.Response.Message.Content,
		Model:            res.ModelName,
		Escalated:        res.Escalated,
		Fallback:         res.Fallback,
		EscalationReason: res.EscalationReason,
		PromptTokens:     res.Usage.PromptTokens,
		CompletionTokens: res.Usage.CompletionTokens,
		TotalTokens:      res.Usage.Total(),
		Breaker:          "disabled (no GEMINI_API_KEY or --local-only)",
	}
	if res.EscalationError != nil {
		out.EscalationError = res.EscalationError.Error()
	}
	if haveRemote && br != nil {
		out.Breaker = res.BreakerState.String()
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
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
