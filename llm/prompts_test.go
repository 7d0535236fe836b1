package llm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/llm"
)

func TestDefaultPromptsFitBudget(t *testing.T) {
	for name, p := range map[string]string{"local": llm.DefaultLocalPrompt, "escalation": llm.DefaultEscalationPrompt} {
		n := talos.EstimateTokens(p)
		if n > llm.SystemPromptTokenBudget {
			t.Errorf("%s prompt estimates %d tokens, over %d", name, n, llm.SystemPromptTokenBudget)
		}
		if n < 250 {
			t.Errorf("%s prompt shrank to %d tokens: was content lost?", name, n)
		}
		for _, must := range []string{"Talos", "Never reveal", "Prompt Injection Firewall", "Never fabricate", "tools you are offered", "SKILLS line"} {
			if !strings.Contains(p, must) {
				t.Errorf("%s prompt lost %q", name, must)
			}
		}
	}
	if !strings.Contains(llm.DefaultLocalPrompt, llm.EscalateMarker) {
		t.Error("the local prompt must teach the escalate marker")
	}
	if _, err := llm.NewPrompts(llm.PromptConfig{}); err != nil {
		t.Fatal(err)
	}
}

// A prompt the size of the original specification's shipped one (544
// tokens) blocks the boot.
func TestOverBudgetBlocks(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big.txt")
	if err := os.WriteFile(big, []byte(strings.Repeat("x", 2176)+"  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := llm.NewPrompts(llm.PromptConfig{Local: big})
	if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), "estimated_tokens=544") || !strings.Contains(err.Error(), "budget=500") {
		t.Fatalf("err = %v", err)
	}
	// Exactly at the budget passes (2003 chars → 500).
	ok := filepath.Join(dir, "ok.txt")
	_ = os.WriteFile(ok, []byte("custom "+strings.Repeat("y", 1996)), 0o600)
	p, err := llm.NewPrompts(llm.PromptConfig{Escalation: ok, Local: "default"})
	if err != nil {
		t.Fatal(err)
	}
	s, _ := p.System(llm.TargetEscalation)
	if !strings.HasPrefix(s, "custom ") {
		t.Fatalf("override not used: %.20q", s)
	}
	l, _ := p.System(llm.TargetLocal)
	if l != llm.DefaultLocalPrompt {
		t.Fatal("default local prompt not used")
	}
}

func TestOverrideErrors(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	_ = os.WriteFile(empty, []byte(" \n\t"), 0o600)
	for name, cfg := range map[string]llm.PromptConfig{
		"missing": {Local: filepath.Join(dir, "nope.txt")},
		"empty":   {Escalation: empty},
		"budget":  {Budget: -1},
	} {
		if _, err := llm.NewPrompts(cfg); !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestUnknownTargetAndAssembly(t *testing.T) {
	p, _ := llm.NewPrompts(llm.PromptConfig{})
	_, err := p.System("qwen_vl")
	if err == nil || !strings.Contains(err.Error(), "UNKNOWN_MODEL_TARGET") || !strings.Contains(err.Error(), "[escalation local]") {
		t.Fatalf("err = %v", err)
	}
	sys, _ := p.Message(llm.TargetLocal, "TOOLS: a, b")
	if !strings.HasSuffix(sys.Content, "\nTOOLS: a, b") || sys.Role != llm.RoleSystem {
		t.Fatalf("catalog not appended: %q", sys.Content[len(sys.Content)-20:])
	}
	msgs := llm.Assemble(sys, []llm.Message{{Role: llm.RoleSystem, Content: "ctx"}},
		[]llm.Message{{Role: llm.RoleUser, Content: "h1"}, {Role: llm.RoleAssistant, Content: "h2"}}, "now")
	var order []string
	for _, m := range msgs[1:] {
		order = append(order, m.Content)
	}
	if msgs[0].Role != llm.RoleSystem || strings.Join(order, ",") != "ctx,h1,h2,now" || msgs[4].Role != llm.RoleUser {
		t.Fatalf("order = %v", order)
	}
}
