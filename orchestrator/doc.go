// Package orchestrator is the chat loop: it runs one user turn through every
// safeguard Talos has, in order.
//
//  1. The prompt-injection firewall scans the user's text (Source user). A
//     lockdown refuses every turn before anything else runs; a blocking
//     verdict refuses the turn; a flag without a block keeps the session
//     local from then on (never escalated to the cloud model).
//  2. The session's recent history (rag.History).
//  3. Long-term memory retrieval within a token budget (rag.Retriever);
//     untrusted memories are scanned as Source rag and dropped when
//     blocked. Memories are rendered with their source and trust.
//  4. Prompt assembly: the router adds the system prompt, after which come a
//     canary token and the tool catalog (Tools), then memories, history and
//     the user's message.
//  5. A VRAM lease on the local model around each inference (VRAM,
//     FromMutex for a vram.Mutex).
//  6. The router: local first, escalation only through its breaker and
//     never for a flagged session nor once the day's tokens reached the
//     Budget (Tracker's daily limit: Reply.Notice tells the user), local
//     fallback when escalation fails.
//  7. Tool calls, each result scanned by the firewall (Source tool or
//     skill) before the model sees it, up to MaxSteps model calls.
//  8. The answer is checked for leaks: the canary or LeakWindow letters in
//     a row copied from a protected text (the system prompts). A leak is
//     withheld, and streaming stops before the copy.
//  9. Write-back: the exchange goes into the session history; the user's
//     message into long-term memory (trusted only when the firewall found
//     it clean) and tool results (never trusted).
//  10. Token accounting (Tokens; Tracker counts per model and UTC day,
//     in Redis when it has one, in memory while Redis fails) and one
//     tier-1 audit record per turn (AuditEvent) with the turn's shape but
//     never its text.
//
// Streaming goes through Turn.Stream; cancellation through the context.
// Sessions are created by the first turn, run one turn at a time, and expire
// after SessionTimeout without a turn. Every failure inside the loop becomes
// a plain message in Reply.Answer (never internal error text) plus a tier-2
// log line carrying the turn's correlation ID, which failed answers name.
package orchestrator
