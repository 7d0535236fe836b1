// Package egress is a forward HTTP proxy that lets a sandboxed program reach
// only the hosts it was allowed, and never an address inside the machine
// or its network.
//
// A Proxy is a plain http.Handler. Serve it on any listener (the skill
// sandbox serves one per run on a unix socket it mounts into the
// container) and point a client at it with HTTP_PROXY / HTTPS_PROXY:
//
//	p, err := egress.New(egress.Config{Allow: []string{"api.example.org", "*.example.net:8443"}}, nil)
//	srv := &http.Server{Handler: p}
//	go srv.Serve(ln)
//
// It serves two kinds of request:
//
//   - CONNECT host:port (HTTPS and any other TLS): the host and port are
//     checked, the connection is dialled, and bytes are relayed both ways
//     without being read. TLS stays end to end.
//   - GET, POST, … with an absolute URL (plain HTTP): the host is checked,
//     the request is forwarded with the hop-by-hop and Proxy-* headers
//     removed, and the answer is relayed. Redirects are not followed: the
//     client gets them and asks again, and each new request is checked.
//
// # What is allowed
//
// Config.Allow lists host patterns: "name" (that name), "*.name" (its
// subdomains, not the name itself), or an IP address; each may end in
// ":port". A pattern without a port allows ports 80 and 443. Names are
// compared in lower case without a trailing dot. An Allowlist is the same
// matcher on its own, for a path that checks URLs itself and must admit
// exactly what the proxy would.
//
// A host that matches is still refused when any address it resolves to is
// loopback, private (RFC 1918, fc00::/7), link-local, multicast,
// unspecified, shared (100.64.0.0/10) or otherwise special (CheckAddr),
// unless Config.AllowAddrs contains it — for tests that serve on loopback,
// or an operator's own service on purpose. The check runs on the address
// actually dialled, so a DNS answer that changes between the check and the
// connection cannot slip through.
//
// # Limits
//
// Config caps the number of connections at once, the bytes relayed in all
// (both directions, over the proxy's life: a program cannot exfiltrate or
// download more than that), the time to connect and how long a tunnel may
// stay silent. Every decision is reported to Config.Events, so the caller
// can record what a program tried to reach.
package egress
