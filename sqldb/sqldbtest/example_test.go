package sqldbtest_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

// A conformance suite runs once per dialect; inside a test each subtest
// calls sqldbtest.Open(t, d) for a fresh database of its own.
func Example() {
	for _, d := range sqldbtest.Dialects {
		fmt.Println(d)
	}
	// Output:
	// sqlite
	// postgres
}
