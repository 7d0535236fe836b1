package host

import (
	"fmt"
	"github.com/talos-ironclad/talos"
	"log/slog"
	"strings"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/llm"
)

// LoadPrompts builds the system prompts selected by cfg's
// TALOS_PROMPT_LOCAL and TALOS_PROMPT_ESCALATION, each checked against
// llm.SystemPromptTokenBudget. On failure the error names the variable and
// the file at fault as well as llm.NewPrompts' reason (a T010). The detail
// lists each prompt's estimated tokens against the budget and its source,
// e.g. "local 312/500 tokens (built-in), escalation 95/500 tokens (/p.txt)".
func LoadPrompts(cfg *config.Config, log *slog.Logger) (*llm.Prompts, string, error) {
	srcs := []struct {
		variable, src string
		target        llm.Target
	}{
		{"TALOS_PROMPT_LOCAL", cfg.PromptLocal, llm.TargetLocal},
		{"TALOS_PROMPT_ESCALATION", cfg.PromptEscalation, llm.TargetEscalation},
	}
	// Check each override alone first, so the error says which file it is.
	for _, s := range srcs {
		if isBuiltinPrompt(s.src) {
			continue
		}
		pc := llm.PromptConfig{} // quiet: the full load below logs
		if s.target == llm.TargetLocal {
			pc.Local = s.src
		} else {
			pc.Escalation = s.src
		}
		if _, err := llm.NewPrompts(pc); err != nil {
			return nil, "", fmt.Errorf("%s=%s: %w", s.variable, s.src, err)
		}
	}
	p, err := llm.NewPrompts(llm.PromptConfig{Local: cfg.PromptLocal, Escalation: cfg.PromptEscalation, Logger: log})
	if err != nil {
		return nil, "", fmt.Errorf("system prompts (TALOS_PROMPT_LOCAL=%s, TALOS_PROMPT_ESCALATION=%s): %w", cfg.PromptLocal, cfg.PromptEscalation, err)
	}
	parts := make([]string, 0, len(srcs))
	for _, s := range srcs {
		text, err := p.System(s.target)
		if err != nil {
			return nil, "", err
		}
		from := "built-in"
		if !isBuiltinPrompt(s.src) {
			from = s.src
		}
		parts = append(parts, fmt.Sprintf("%s %d/%d tokens (%s)", s.target, talos.EstimateTokens(text), llm.SystemPromptTokenBudget, from))
	}
	return p, strings.Join(parts, ", "), nil
}

func isBuiltinPrompt(src string) bool { return src == "" || src == llm.PromptDefault }
