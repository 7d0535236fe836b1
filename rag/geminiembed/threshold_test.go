package geminiembed_test

import (
	"testing"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/geminiembed"
)

// The retriever takes its threshold from the embedder: the spec's 0.7.
func TestSimilarityThresholdIsTheSpecs(t *testing.T) {
	var e rag.ThresholdEmbedder = &geminiembed.Embedder{}
	if got := rag.ThresholdFor(e); got != rag.DefaultThreshold || geminiembed.DefaultThreshold != rag.DefaultThreshold {
		t.Fatalf("threshold %v, want the spec's %v", got, rag.DefaultThreshold)
	}
}
