package llmtest_test

import (
	"testing"

	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
)

func TestFakeConformance(t *testing.T) {
	llmtest.RunModel(t, func(_ *testing.T, s llmtest.Script) llm.Model { return llmtest.Scripted(s) })
}
