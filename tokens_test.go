package talos_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
)

func ExampleEstimateTokens() {
	fmt.Println(talos.EstimateTokens("  The staging database password rotates every Tuesday.  "))
	// Output: 13
}

func TestEstimateTokens(t *testing.T) {
	for in, want := range map[string]int{"": 0, "abc": 0, "abcd": 1, "  abcd\n": 1, strings.Repeat("é", 8): 2} {
		if got := talos.EstimateTokens(in); got != want {
			t.Errorf("EstimateTokens(%q) = %d, want %d", in, got, want)
		}
	}
}
