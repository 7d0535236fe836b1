package gateway_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/mcphost/gateway"
)

// BenchmarkSessionCheckCached is a cached capability check: the token was
// verified once, each call matches its scopes.
func BenchmarkSessionCheckCached(b *testing.B) {
	root, agent := ident(b, "root"), ident(b, "agent")
	v := verifier(b, root)
	tok := issue(b, root, agent, time.Hour, "mcp/fs/*", "chat/ask", "feedback/view")
	s := v.NewSession(gateway.RateLimit{})
	if err := s.Check(tok, "mcp/fs/read"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.Check(tok, "mcp/fs/read"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthorize is an uncached, replay-protected check: two Ed25519
// verifications (token and request) and the nonce bookkeeping.
func BenchmarkAuthorize(b *testing.B) {
	root, agent := ident(b, "root"), ident(b, "agent")
	v := verifier(b, root)
	tok := issue(b, root, agent, time.Hour, "chat/ask")
	reqs := make([]gateway.Request, 0, 1<<16)
	for range cap(reqs) {
		r, _ := gateway.NewRequest(agent, tok, "chat/ask")
		reqs = append(reqs, r)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if i == len(reqs) {
			b.StopTimer()
			v = verifier(b, root) // a fresh nonce memory
			i = 0
			b.StartTimer()
		}
		if _, err := v.Authorize(reqs[i]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkAuthorizeFileState is Authorize with the used nonces and
// revocations persisted in a FileState: each check adds a locked
// read-merge-write of the file (the cost of a tunnel hello, once per
// connection).
func BenchmarkAuthorizeFileState(b *testing.B) {
	root, agent := ident(b, "root"), ident(b, "agent")
	st, err := gateway.NewFileState(filepath.Join(b.TempDir(), "auth.json"))
	if err != nil {
		b.Fatal(err)
	}
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{root.PeerID()}}, st)
	if err != nil {
		b.Fatal(err)
	}
	tok := issue(b, root, agent, time.Hour, "chat/ask")
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		r, _ := gateway.NewRequest(agent, tok, "chat/ask")
		b.StartTimer()
		if _, err := v.Authorize(r); err != nil {
			b.Fatal(err)
		}
	}
}
