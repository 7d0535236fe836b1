package strikestest_test

import (
	"testing"

	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

func TestMemoryStoreConformance(t *testing.T) {
	strikestest.RunStoreTests(t, func(*testing.T) strikes.Store { return strikestest.NewMemoryStore() })
}
