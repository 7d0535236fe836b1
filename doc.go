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
//   - rag and prune: long-term memory in a vector store with MMR retrieval in a
//     token budget, and capacity pruning that archives before it deletes.
//   - firewall: prompt-injection detection with rules, a statistical
//     classifier, provenance-aware thresholds, canaries and a lockdown.
//   - sockproxy: a Docker API proxy that inspects every request it forwards.
//   - reaper: one owner of wait4, idle-process reaping, container respawn and
//     a zombie hunt that touches only what Talos started.
//   - atomicfile: writes a file so readers see the old or the new content,
//     never a mix.
//
// Planned, not yet in the module: quarantine (the skill
// lifecycle), strikes (three-strike deprecation), dream (the nightly
// maintenance cycle) and mcphost (the MCP tool host).
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
// meaning; the spec's hex codes (Appendix A) are kept as aliases
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
