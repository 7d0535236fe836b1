package llmtest_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
)

func ExampleFake() {
	m := llmtest.NewFake("test-model",
		llmtest.Reply{Text: "first answer", Usage: llm.Usage{PromptTokens: 5, CompletionTokens: 2}},
		llmtest.Reply{ToolCalls: []llm.ToolCall{{Name: "ls", Arguments: map[string]any{"dir": "/tmp"}}}},
	)
	ctx := context.Background()
	r1, _ := m.Chat(ctx, llm.Request{Messages: []llm.Message{{Role: llm.RoleUser, Content: "hi"}}})
	r2, _ := m.Chat(ctx, llm.Request{})
	_, err := m.Chat(ctx, llm.Request{})
	fmt.Println(r1.Message.Content, r1.Usage.Total())
	fmt.Println(r2.Message.ToolCalls[0].Name)
	fmt.Println(err != nil, len(m.Calls()))
	// Output:
	// first answer 7
	// ls
	// true 3
}
