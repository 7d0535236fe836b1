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
	// browser_automation@1.0.0 from TRUST_LEVEL 2
	// code_executor@1.0.0 from TRUST_LEVEL 2
	// docker_control@1.0.0 from TRUST_LEVEL 3
	// file_manager@1.0.0 from TRUST_LEVEL 0
	// web_scraper@1.0.0 from TRUST_LEVEL 1
}

// The operator's allowlist names hosts; a private address is reachable only
// where an allow-address line opens it (here a page on a test network).
func ExampleParseWebAllowlist() {
	al, err := genesis.ParseWebAllowlist([]byte("# approved\ndocs.example.org\n*.example.net\n172.19.0.2\nallow-address 172.19.0.2\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(al.Hosts, al.Addrs)
	// Output: [docs.example.org *.example.net 172.19.0.2] [172.19.0.2/32]
}
