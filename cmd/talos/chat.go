package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/orchestrator"
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
		"MEMORY_CONTEXT_WINDOW", "MEMORY_SIMILARITY_THRESHOLD", "SESSION_TIMEOUT", config.ConfigFileName, config.EnvFileName:
		return true
	case "GEMINI_API_KEY", "GEMINI_MODEL_NAME":
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
		tctx, cancel := context.WithTimeout(ctx, timeout)
		streamed := false
		rep, err := chat.Chat(tctx, orchestrator.Turn{SessionID: session, Message: line, Stream: func(d string) error {
			streamed = true
			_, err := io.WriteString(out, d)
			return err
		}})
		cancel()
		if err != nil {
			if errors.Is(err, orchestrator.ErrNoSession) {
				session = "" // it expired: the next message starts a new one
				fmt.Fprintln(out, "talos: the session expired; your next message starts a new one.")
				continue
			}
			fmt.Fprintln(out, "talos:", err)
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
		if ctx.Err() != nil {
			return nil
		}
	}
}
