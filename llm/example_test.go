package llm_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"

	"github.com/talos-ironclad/talos"
)

func Example() {
	local := llmtest.NewFake("qwen2.5-coder:7b", llmtest.Reply{Text: "[ESCALATE]"})
	remote := llmtest.NewFake("gemini-2.5-flash", llmtest.Reply{Text: "Here is a careful answer.",
		Usage: llm.Usage{PromptTokens: 120, CompletionTokens: 8}})
	router, err := llm.NewRouter(llm.RouterConfig{}, local, remote, nil)
	if err != nil {
		panic(err)
	}
	res, err := router.Route(context.Background(), llm.RouteRequest{
		Messages: []llm.Message{{Role: llm.RoleUser, Content: "Compare three sorting algorithms in depth."}},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(res.ModelName, res.Escalated, res.Fallback, res.BreakerState)
	fmt.Println(res.Response.Message.Content)
	// Output:
	// gemini-2.5-flash true false closed
	// Here is a careful answer.
}

func ExampleNewPrompts() {
	p, err := llm.NewPrompts(llm.PromptConfig{}) // built-in prompts, 500-token budget
	if err != nil {
		panic(err)
	}
	s, _ := p.System(llm.TargetLocal)
	fmt.Println(talos.EstimateTokens(s) <= llm.SystemPromptTokenBudget)
	// Output: true
}
