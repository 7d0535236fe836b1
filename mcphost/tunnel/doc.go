// Package tunnel carries MCP between two peers over mutually authenticated
// TLS 1.3, each end pinned to the other's Ed25519 key (`talos mcp serve` and
// `talos mcp connect`).
//
// The serving side ([Serve]) exposes an MCP server, normally a
// gateway.Server in front of a Host, so every call from the peer runs
// through the Host's pipeline and the served command went through the
// Host's allowlist. The connecting side ([Dial], then [Bridge]) is a stdio
// MCP server a desktop client runs as its `command`: it copies the client's
// stdin and stdout through the tunnel. Only the one authorized peer is
// accepted; a peer with any other key fails the TLS handshake.
//
// With [Options].Verifier set ([ServeWith]), the key alone is not enough:
// each connection must open with a hello frame, a request for
// [ConnectAction] signed by the peer with a capability token of a trusted
// issuer ([DialWith] sends it). An expired, revoked or foreign token and a
// replayed hello are refused before any MCP message is served; with a
// gateway.FileState the used nonces and revocations survive a restart. The
// admitted token then rides in the session's context (gateway.WithCaller):
// a gateway.Server lists and runs only the tools its scopes grant, within
// the connection's rate limit ([Options].RateLimit).
package tunnel
