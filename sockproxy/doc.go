// Package sockproxy is a filtering proxy for the Docker Engine API: it sits
// between clients that need Docker (the skill sandbox, the zombie hunt, the
// respawn manager) and the engine's socket, and forwards only what the
// client's profile allows. Everything else is answered with 403 and a
// Docker-style body {"message": "sockproxy: denied: …"}, and written to the
// tier-1 audit log.
//
// # Using it
//
//	p, err := sockproxy.New(sockproxy.Config{
//		Upstream: "unix:///var/run/docker.sock",
//		Profile:  sockproxy.SkillsProfile(),
//		Audit:    auditLogger, // tier 1
//	})
//	ln, err := sockproxy.Listen("unix:///run/talos/docker.sock", sockproxy.ListenOptions{})
//	err = sockproxy.Serve(ctx, ln, sockproxy.NewServer(p))
//
// Any Docker client then talks to the proxy's socket as if it were the
// engine's (the moby client negotiates the API version through /_ping).
// The command `talos sockproxy` does the same from the shell.
//
// # What is checked, in order
//
//  1. Rate: a token bucket per client (the peer's uid on a unix socket, its
//     IP on TCP); over the limit is 429 with Retry-After.
//  2. Path: decoded once; a '%' left afterwards (double encoding), a byte
//     outside [A-Za-z0-9/._-], the spec's blocked patterns (prune, exec,
//     images, build, volumes, networks, swarm, plugins, secrets, "/../", …)
//     and any path that path.Clean would change (//, /./, /../, a trailing
//     slash) are denied. An optional /vX.Y prefix is accepted on every
//     endpoint, /_ping and /version included; versions older than
//     DefaultMinAPIVersion are denied.
//  3. Endpoint and method: only the Ops of the profile. SkillsProfile is the
//     spec's allowlist (ping, version, list, inspect, create, start, stop,
//     wait, logs); MaintenanceProfile adds kill and remove;
//     DockerControlProfile has only ping, version, list, inspect, start and
//     stop.
//  4. Query: every parameter is checked by name and value, repeated or
//     unknown parameters are denied (for example start's checkpoint-dir). A
//     container list's filters are parsed and get label=talos.managed=true
//     added, so a client only ever sees Talos containers.
//  5. Body: only create and update take one (others must send none; a
//     chunked body on start is denied). It must be application/json, at
//     most MaxBodyBytes, one JSON value with no two keys that are equal when
//     case is ignored (the engine matches keys case-insensitively, so
//     "privileged" or "Privileged" spelled with odd Unicode folding would
//     otherwise slip past a case-sensitive check), and every key of the
//     objects that matter must be a known field spelled exactly. Create is
//     denied for Privileged, CapAdd, host or container: namespaces (network,
//     pid, ipc, uts, userns, cgroupns, cgroup), Devices, DeviceRequests,
//     DeviceCgroupRules, any SecurityOpt but no-new-privileges, Sysctls,
//     VolumesFrom, CgroupParent, published ports, runtime annotations,
//     masked-path overrides, other runtimes and log drivers, bind sources
//     outside the profile's BindAllowlist (empty by default, so no bind at
//     all), named volumes and volume driver options; ReadonlyRootfs must be
//     present and true. The checked tree is re-encoded and forwarded, with
//     the LabelManaged label injected, so the engine sees exactly what was
//     checked.
//  6. Container: per-container calls (inspect, start, stop, wait, logs,
//     kill, remove, update, attach) first inspect the container on the
//     engine (cached for InspectCacheTTL) and are denied unless it carries
//     LabelManaged=true; the request is forwarded with the resolved full ID,
//     so a name cannot be re-pointed between the check and the call.
//
// Allowed calls are forwarded by an httputil.ReverseProxy that flushes
// every write (logs follow, wait) and passes upgraded connections (attach)
// through, so nothing long-lived is buffered. Allowed state-changing calls
// are audited too.
//
// # What it does not do
//
// The proxy cannot see the host: a bind source in the allowlist that is a
// symlink is resolved by the engine. Logs are allowed and may contain what a
// container printed.
//
// # Malformed requests
//
// A request line or header block Go's HTTP server cannot parse (extra
// words, no version, a bad Content-Length, headers over 64 KiB, a request
// cut off mid-header, bytes that are not HTTP) is rejected by the server
// before the proxy sees it, so it never reaches the engine. With the server
// built by NewServer (and used by Serve) it is also denied like every other
// forbidden request: the server's own 400 (431, 501, 505) is replaced by the
// proxy's 403 with a Docker-style {"message": …} naming the server's
// reason, and an audit record "malformed request" is written before the
// answer, with the client, status 403, server_status, code T406, the number
// of bytes read and request_line: the first line of what was read, quoted
// with control and non-ASCII bytes escaped, cut at 64 bytes, and withheld
// when it looks like a header line (so a credential is never logged; bodies
// never are). This holds for a malformed request pipelined behind a valid
// one too (its request_line then says it was not captured). A request that
// never reached the proxy and got no such answer (one net/http answered
// through its response writer, an unsupported Expect: 417) is recorded,
// without a status, when its connection closes. Clients that connect and
// send nothing, and keep-alive connections closed while idle, are not
// recorded. "OPTIONS *" is given to the proxy, which denies it.
//
// # Testing
//
// Package sockproxy/sockproxytest has an in-memory Docker engine, a
// transport that puts any handler behind a proxy without a socket, and
// Serve, which runs a proxy on a unix socket for the rest of a test.
package sockproxy
