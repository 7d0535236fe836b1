// Package llmtest helps test code that uses llm.Model: Fake is a scripted
// model, and RunModel is the conformance suite every llm.Model adapter passes
// (llm/ollama and llm/gemini run it against httptest servers speaking their
// wire formats; Fake runs it too).
package llmtest
