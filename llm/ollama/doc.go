// Package ollama is the llm.Model adapter for a local model served by Ollama,
// over its native /api/chat (tool calls, streaming NDJSON, keep_alive), not
// the OpenAI-compatible endpoint, which drops tool calls. It also implements
// the model-runtime calls the vram package needs: Load (a generate request
// with keep_alive), Unload (keep_alive 0), Resident (/api/ps) and the real
// context length from /api/show.
//
// Errors carry talos codes: a model that cannot be loaded, an unreachable
// server or an HTTP error is T203 LOCAL_MODEL_LOAD_FAILED; a timeout (the
// request's own deadline or Config.Timeout) is T204 LOCAL_MODEL_TIMEOUT; a
// response that breaks the protocol is T207.
package ollama
