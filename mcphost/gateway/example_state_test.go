package gateway_test

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos/mcphost/gateway"
)

// A revocation stored in a FileState outlives the Verifier that made it:
// the next one on the same file (after a restart) refuses the token.
func ExampleFileState() {
	dir, _ := os.MkdirTemp("", "talos-auth")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "auth.json")
	root, _ := gateway.NewIdentity("workstation")
	laptop, _ := gateway.NewIdentity("laptop")
	tok, _ := gateway.Issue(root, laptop.PeerID(), []string{"mcp/tunnel/connect"}, time.Hour)

	open := func() *gateway.Verifier {
		st, _ := gateway.NewFileState(path)
		v, _ := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{root.PeerID()}}, st)
		return v
	}
	t, _ := gateway.Parse(tok)
	_ = open().Revoke(t)

	_, err := open().Verify(tok) // a new process on the same file
	fmt.Println(err != nil)
	// Output: true
}
