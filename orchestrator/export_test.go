package orchestrator

import "testing"

// SetIndexScanSteps limits the SCAN calls one read spends indexing to n
// until the test ends.
func SetIndexScanSteps(t *testing.T, n int) {
	old := indexScanSteps
	indexScanSteps = n
	t.Cleanup(func() { indexScanSteps = old })
}
