package host_test

import (
	"context"
	"testing"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/llm/llmtest"
)

func BenchmarkOpenAgent(b *testing.B) {
	cfg := config.Defaults(b.TempDir())
	for b.Loop() {
		a, err := host.OpenAgent(context.Background(), cfg, host.AgentOptions{Local: llmtest.NewFake("q")})
		if err != nil {
			b.Fatal(err)
		}
		a.Close()
	}
}
