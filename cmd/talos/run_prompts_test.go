package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/llm"
)

// appendConfig adds lines to an initialised home's config.yaml.
func appendConfig(t *testing.T, home, lines string) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(home, "config", "config.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
}

// A system prompt over its token budget stops `talos run` at the prompts
// step (exit 1), naming the step, the variable and the file; the failure
// marker names the step too.
func TestRunPromptOverBudgetExits1(t *testing.T) {
	home := initHome(t)
	big := filepath.Join(home, "config", "big-prompt.txt")
	if err := os.WriteFile(big, []byte(strings.Repeat("z", 4*llm.SystemPromptTokenBudget+4)), 0o644); err != nil {
		t.Fatal(err)
	}
	appendConfig(t, home, "talos_prompt_local: big-prompt.txt\n")
	_, _, err := talosCmd(context.Background(), "run", "--home", home, "--health-addr", freeAddr(t))
	if exitCode(err) != exitRunBootFailed || !strings.Contains(err.Error(), `boot step "prompts" failed`) ||
		!strings.Contains(err.Error(), "TALOS_PROMPT_LOCAL="+big) || !strings.Contains(err.Error(), "PROMPT_BUDGET_EXCEEDED") {
		t.Fatalf("code %d: %v", exitCode(err), err)
	}
	r, rerr := boot.ReadReady(filepath.Join(home, boot.ReadyFileName))
	if rerr != nil || r.Status != boot.StatusFailed || r.FailedStep != "prompts" {
		t.Fatalf("failure marker %+v %v", r, rerr)
	}
}

// A prompt within budget boots, and `talos run` prints each prompt's
// tokens against the budget.
func TestRunPromptTokensPrinted(t *testing.T) {
	home := initHome(t)
	small := filepath.Join(home, "config", "local.txt")
	if err := os.WriteFile(small, []byte(strings.Repeat("abcd", 50)), 0o644); err != nil { // 50 tokens
		t.Fatal(err)
	}
	appendConfig(t, home, "talos_prompt_local: local.txt\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out string
	done := make(chan error, 1)
	go func() {
		o, _, err := talosCmd(ctx, "run", "--home", home, "--health-addr", freeAddr(t))
		out = o
		done <- err
	}()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 5*time.Second)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v\n%s", err, out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("talos run did not stop")
	}
	want := "prompts: local 50/500 tokens (" + small + "), escalation "
	if !strings.Contains(out, want) || !strings.Contains(out, "/500 tokens (built-in)") {
		t.Fatalf("output lacks %q:\n%s", want, out)
	}
}
