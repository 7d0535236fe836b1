package breakertest_test

import (
	"testing"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/breakertest"
)

// The suite itself runs here against the reference in-memory store, so a
// change to the suite is checked in this package too.
func TestRunMemoryStore(t *testing.T) {
	breakertest.Run(t, func(*testing.T) breaker.Store { return breaker.NewMemoryStore() })
}
