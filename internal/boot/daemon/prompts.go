package daemon

import (
	"context"
	"log/slog"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/llm"
)

// NamePrompts is the boot step that loads the system prompts and checks
// them against their token budget (a prompt over budget blocks the boot).
const NamePrompts = "prompts"

// LoadPrompts builds the system prompts selected by cfg's
// TALOS_PROMPT_LOCAL and TALOS_PROMPT_ESCALATION, each checked against
// llm.SystemPromptTokenBudget (host.LoadPrompts, which the agent uses too).
func LoadPrompts(cfg *config.Config, log *slog.Logger) (*llm.Prompts, string, error) {
	return host.LoadPrompts(cfg, log)
}

// stepPrompts loads the system prompts at boot (fatal: the daemon, like the
// original specification, refuses to run with a prompt over its budget).
func (d *Daemon) stepPrompts(ctx context.Context) (string, error) {
	_, detail, err := LoadPrompts(d.cfg, d.bootLog())
	return detail, err
}
