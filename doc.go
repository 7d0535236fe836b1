// Package talos is the root of the Talos SDK: a toolkit for running an AI
// agent safely on your own machine, and the home of the one error-code
// registry every Talos package uses.
//
// # The pieces
//
// Each package is useful on its own; the `talos` daemon (cmd/talos) wires them
// together.
//
//   - vram: arbitrates GPU memory between local models with leases, and kills a
//     hung model runner without deadlocking.
//   - breaker: a circuit breaker with a sliding failure window, a cooldown
//     ladder, Retry-After handling and a persistent store.
//   - llm: a Model interface, Ollama and Gemini clients, and a router that
//     answers locally first and escalates to the cloud only behind the breaker.
//   - orchestrator: the chat loop that runs every safeguard on every turn —
//     firewall, memory in a token budget, VRAM lease, router, tool results
//     through the firewall, leak check, token accounting, audit.
//   - rag and prune: long-term memory in a vector store with MMR retrieval in a
//     token budget, and capacity pruning that archives before it deletes.
//   - firewall: prompt-injection detection with rules, a statistical
//     classifier, provenance-aware thresholds, canaries and a lockdown.
//   - sockproxy: a Docker API proxy that inspects every request it forwards.
//   - egress: a forward HTTP proxy that lets a sandboxed program reach only
//     allowlisted hosts and never an address inside the machine's network.
//   - reaper: one owner of wait4, idle-process reaping, container respawn and
//     a zombie hunt that touches only what Talos started.
//   - strikes: signed strikes against failing skills; three take a skill
//     out of service, with a tamper-evident audit chain.
//   - quarantine: the skill lifecycle from untrusted to active — strict
//     manifests, content hashes trust is bound to, a static scan, and
//     promotion only with a code a person receives out of band; its
//     sandbox (quarantine/sandbox) runs a skill in a locked-down container
//     through the socket proxy and turns the outcome into a strike type.
//   - sqldb: relational state on embedded SQLite or PostgreSQL, with
//     versioned migrations and transactions that survive two writers.
//   - dream: the nightly maintenance cycle: a cron schedule, one cycle at a
//     time across processes, phases with timeouts, checkpoints that survive
//     a crash, recovery retries, escalation and a report per cycle.
//   - mcphost: runs MCP tool servers (stdio, HTTP or in process) and passes every
//     tool call through one fail-closed pipeline: allow/deny lists, pinned
//     tool definitions with quarantine, secret redaction, a result scanner
//     and an audit of each call's shape; its gateway and tunnel offer those
//     tools to other MCP clients and to peers holding capability tokens.
//   - atomicfile: writes a file so readers see the old or the new content,
//     never a mix.
//   - proc: signals, /proc stats and reaping of processes, for supervisors
//     such as reaper and vram.
//
// Planned, not yet in the module: the dashboard.
//
// # Errors
//
// Every failure Talos reports carries a stable [Code] such as "T100"
// (T0xx infrastructure, T1xx resources, T2xx model/API, T3xx skills, T4xx
// security). Codes are sentinels, so callers test them with errors.Is:
//
//	if errors.Is(err, talos.ErrVRAMTimeout) { … }
//
// [Codes] lists the registry with each code's name, category, severity and
// meaning; the original specification's hex codes are kept as aliases
// ([LookupHex]).
//
// # Correlation IDs
//
// Every request carries a 16-hex-character correlation ID in its context
// ([WithCorrelationID], [EnsureCorrelationID]) and, over HTTP, in
// [CorrelationHeader]. Talos packages log with the request's context
// (InfoContext, WarnContext, …), so a handler wrapped with [WithCorrelation]
// puts the ID on every line a request causes.
package talos
