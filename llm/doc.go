// Package llm is the model layer of Talos: a Model interface (chat with
// tools, streaming, token usage, model info with the real context length),
// the system prompts, and a Router that keeps work on the local model and
// escalates to a cloud model only behind a circuit breaker.
//
// Adapters live in subpackages: llm/ollama (the local model over Ollama's
// /api/chat, plus the load/unload/residency calls the vram package needs) and
// llm/gemini (Google Gemini over google.golang.org/genai). llm/llmtest has a
// scripted fake Model and the conformance suite every adapter passes.
//
// # Routing
//
// Router.Route sends a turn to the local model with the local system prompt.
// If the answer contains EscalateMarker ("[ESCALATE]") or the local model
// fails, it escalates once to the remote model, through a breaker.Breaker
// whose Classifier is Classify (content refusals never count as failures; a
// 429's retry delay becomes the breaker's wait). It never escalates while the
// breaker rejects calls or when RouteRequest.NoEscalate is set (the firewall
// flagged the conversation). If escalation fails, the local answer comes back
// with Result.Fallback = true; if the local model had failed too, Route
// returns an error naming both failures. There are no loops: one local call,
// at most one remote call per turn.
//
// # System prompts
//
// NewPrompts validates the prompts against the 500-token budget at start-up
// (characters / 4, the spec's estimator) and fails with a T010 error naming
// the prompt and its size when one is over. The spec's own prompts were over
// (544 and 508 tokens); DefaultLocalPrompt and DefaultEscalationPrompt are
// trimmed versions that pass. Each can be overridden with a file.
package llm
