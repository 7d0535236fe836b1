// Package gateway offers a Host's guarded tools to other MCP clients, and
// gives agents identities and capability tokens for reaching each other's
// tools.
//
// [NewServer] serves every tool the Host can call as one MCP server
// ("server.tool" names, full pinned definitions), over stdio
// (server.ServeStdio of [Server.MCPServer]) or streamable HTTP
// ([Server.HTTPHandler]: loopback host names only, behind a bearer token).
// Every call runs through the Host's pipeline; a denial comes back as a
// tool error naming the step, and a tool that stops being callable leaves
// the list at once.
//
// An [Identity] is an Ed25519 key pair with a name; its [PeerID] ("tp1…")
// is the public key itself, so signatures check against the ID alone. The
// key file is written with mode 0600 and refused when others can read it.
//
// A capability token ([Issue]) names its issuer, subject, scopes, expiry
// and a nonce, and is signed by the issuer. Its subject may [Delegate] it,
// only narrowing: fewer or narrower scopes and an expiry no later than the
// parent's; the chain travels inside the token and [Parse] checks every
// link. Scopes are hierarchical and a grant covers exactly what it names:
// "mcp/fs/read" grants that action only, "mcp/fs/*" everything below
// mcp/fs.
//
// A [Verifier] trusts the tokens of its root issuers that are valid now
// (60 s of clock skew tolerated, more is refused) and not revoked
// ([Verifier.Revoke] covers every delegation below a token).
// [Verifier.Authorize] checks a [Request]: signed by the token's subject
// (a copied token alone is useless), its time within the skew, its nonce
// never seen before (no replay), its action granted. A [Session] caches
// verified tokens so a repeated check is a scope match, and limits its
// calls with a token bucket. [WithCaller] ties a peer's session and token
// to the requests a [Server] serves, so it lists and runs only the tools
// the token grants ([ToolAction]). A [DecisionLog] keeps every Authorize
// decision (and every such tool call's) and exports it as CSV or JSON; a
// [FileState] keeps revocations and used nonces across restarts.
package gateway
