// Package mcphost runs MCP (Model Context Protocol) tool servers for an
// agent and passes every tool call through one pipeline that fails closed.
//
// # Servers
//
// A [Config] lists the servers of config.yaml's `mcp_servers:` as
// [ServerConfig] entries ([ParseServers] reads them from the file, in
// order, with each problem's line): stdio servers by command, servers on
// the network by URL (streamable HTTP or SSE; https, or http to loopback
// only), or, for Go users, an mcp-go server in this process
// ([ServerConfig.InProcess]). [New] validates the whole configuration and
// reports every problem at once: the command is
// resolved (PATH, then symlinks) to an absolute path that must lie inside
// [Config.AllowedCommands] (never a basename match), arguments that would
// make a server listen on the network are refused, a server inherits only
// the variables of [Config.EnvAllowlist] and never one of Talos's own
// secrets, and timeout_seconds must lie in 1–300.
//
// [Host.Start] discovers the tools of every server, also of those without
// auto_start (they are started, listed and stopped), following every
// tools/list page. A server that announces notifications/tools/list_changed
// is listed again. Stdio servers run in their own process group and are
// stopped by closing their stdin, then SIGTERM ([StdinGrace] later), then
// SIGKILL to the group ([TermGrace] later); their stderr goes to the debug
// log, and a message longer than [MaxMessageBytes] ends the connection. A
// server that crashes, fails to start or times out is restarted at its next
// use after a backoff (1 s, doubling up to 30 s), at most max_retries times
// in a row; [Host.Reset] revives one the host gave up on.
//
// # Pinning and quarantine
//
// Each tool is pinned to (server identity, tool name, SHA-256 of its
// canonical title, description and input schema). The first discovery pins
// what it sees unless [Config.RequireApproval] is set. Later, a changed
// description or schema, a renamed tool or an added tool quarantines the
// whole server until an operator reviews [Host.Pending] and calls
// [Host.Approve] with the reviewed diff's fingerprint (definitions that
// changed again since the review are not approved). A tool whose name another, earlier server already offers
// is refused, so a server cannot shadow another's tool. Pins live in a
// [PinStore]: [FilePins] keeps them across restarts (a definition changed
// while Talos was down is caught at the next start), [MemoryPins] for
// tests and short-lived hosts.
//
// # The pipeline
//
// [Host.Call] runs, in order: lookup, allow/deny lists, name collision,
// pin check, secret redaction of the arguments, the before hook, the call
// itself within the server's timeout, the size cap, secret redaction of
// the result, the [ResultScanner] (where the firewall scans the result as
// Source: tool), the after hook and the audit of the call's shape
// ([AuditRecord]: names and sizes, verdicts, duration, never values). An
// error or panic in any step denies the call; [StepOf] names the step.
// Secrets are redacted to typed placeholders such as
// "[REDACTED:private-key]" rather than blocking the call. [Host.Stats]
// counts calls, denials by step and redactions for metrics.
//
// # Small models
//
// [Host.Catalog] lists the callable tools as "server.tool" with one-line
// descriptions of at most 60 characters and at most 3 parameters, and
// estimates its token cost; [Catalog.Functions] gives the same tools as
// native tool definitions with trimmed schemas (they convert to llm.Tool
// for the Ollama and Gemini adapters). Models without native tool calling
// write `[USE_MCP: server.tool {"arg": 1}]`; [ParseTextCalls] finds these
// calls (with JSON arguments that may contain "}]"), caps their number,
// and [FormatTextResult] puts a size-capped result back into the prompt.
package mcphost
