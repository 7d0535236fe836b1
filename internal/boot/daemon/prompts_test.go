package daemon_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/llm"
)

// The prompts step runs right after config and reports each prompt's
// estimated tokens against the budget and where it came from.
func TestPromptsStepReportsTokens(t *testing.T) {
	file := filepath.Join(t.TempDir(), "escalation.txt")
	text := strings.Repeat("word ", 80) // 399 runes trimmed → 99 tokens
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := newHome(t, map[string]string{"TALOS_PROMPT_ESCALATION": file})
	d := start(t, cfg, fastOpts())
	steps := d.Report().Steps
	if len(steps) < 4 || steps[2].Name != daemon.NameConfig || steps[3].Name != daemon.NamePrompts {
		t.Fatalf("prompts must run right after config: %+v", steps)
	}
	s := steps[3]
	local := talos.EstimateTokens(llm.DefaultLocalPrompt)
	want := "local " + strconv.Itoa(local) + "/500 tokens (built-in), escalation 99/500 tokens (" + file + ")"
	if s.Outcome != boot.OK || s.Detail != want {
		t.Fatalf("step %+v, want detail %q", s, want)
	}
}

// A prompt over its budget stops the boot at the prompts step, naming the
// variable and the file (a T010).
func TestPromptsOverBudgetIsFatal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "local.txt")
	if err := os.WriteFile(file, []byte(strings.Repeat("x", 4*llm.SystemPromptTokenBudget+4)), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := newHome(t, map[string]string{"TALOS_PROMPT_LOCAL": file})
	d, err := daemon.New(cfg, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	err = d.Start(context.Background())
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	var se *boot.StepError
	if !errors.As(err, &se) || se.Step != daemon.NamePrompts || !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("want a T010 failure of step prompts, got %v", err)
	}
	for _, frag := range []string{"TALOS_PROMPT_LOCAL=" + file, "PROMPT_BUDGET_EXCEEDED", "estimated_tokens=501, budget=500"} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("error lacks %q: %v", frag, err)
		}
	}
	if d.Report().FailedStep != daemon.NamePrompts || d.HealthAddr() != "" {
		t.Fatalf("report %+v, health %q", d.Report(), d.HealthAddr())
	}
	r, err := boot.ReadReady(d.ReadyPath())
	if err != nil || r.Status != boot.StatusFailed {
		t.Fatalf("failure marker %+v %v", r, err)
	}
}
