package breaker_test

import (
	"testing"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/breakertest"
)

func TestMemoryStoreConformance(t *testing.T) {
	breakertest.Run(t, func(*testing.T) breaker.Store { return breaker.NewMemoryStore() })
}
