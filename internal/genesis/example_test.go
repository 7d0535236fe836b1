package genesis_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/internal/genesis"
)

// The binary's pin list verifies with its compiled public key; each pin
// names the lowest TRUST_LEVEL at which the skill is active.
func ExampleBundle_Verify() {
	pins, err := genesis.Builtin().Verify()
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range pins.Skills {
		fmt.Printf("%s@%s from TRUST_LEVEL %d\n", p.ID, p.Version, p.MinTrust)
	}
	// Output:
	// code_executor@1.0.0 from TRUST_LEVEL 2
	// file_manager@1.0.0 from TRUST_LEVEL 0
	// web_scraper@1.0.0 from TRUST_LEVEL 1
}
