package ragtest_test

import (
	"testing"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

func TestMemoryStoreConformance(t *testing.T) {
	ragtest.RunStore(t, func(t *testing.T, dim int) rag.Store { return ragtest.NewMemoryStore(dim) })
}
