package gateway_test

import (
	"fmt"
	"time"

	"github.com/talos-ironclad/talos/mcphost/gateway"
)

// An operator grants an assistant the right to chat and to read feedback;
// the assistant's signed requests pass, submitting feedback does not, and a
// replayed request is refused.
func Example() {
	operator, _ := gateway.NewIdentity("operator")
	assistant, _ := gateway.NewIdentity("assistant")
	token, _ := gateway.Issue(operator, assistant.PeerID(), []string{"chat/ask", "feedback/view"}, time.Hour)

	v, _ := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{operator.PeerID()}}, nil)
	for _, action := range []string{"chat/ask", "feedback/submit"} {
		req, _ := gateway.NewRequest(assistant, token, action)
		_, err := v.Authorize(req)
		fmt.Printf("%s allowed: %v\n", action, err == nil)
		if action == "chat/ask" {
			_, err = v.Authorize(req)
			fmt.Printf("%s replayed allowed: %v\n", action, err == nil)
		}
	}
	// Output:
	// chat/ask allowed: true
	// chat/ask replayed allowed: false
	// feedback/submit allowed: false
}
