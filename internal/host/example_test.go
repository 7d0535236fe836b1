package host_test

import (
	"bytes"
	"fmt"
	"os"

	"github.com/talos-ironclad/talos/internal/host"
)

// A home's secret keys are made on first use and the same on every call.
func ExampleKey() {
	home, _ := os.MkdirTemp("", "home")
	defer os.RemoveAll(home)
	a, _ := host.Key(home, "audit")
	b, _ := host.Key(home, "audit")
	fmt.Println(len(a), bytes.Equal(a, b))
	// Output: 32 true
}
