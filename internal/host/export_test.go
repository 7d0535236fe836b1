package host

import "testing"

// SetDefaultOllamaURL points the look-up of a local model without
// TALOS_OLLAMA_URL at url until the test ends.
func SetDefaultOllamaURL(t *testing.T, url string) {
	old := defaultOllamaURL
	defaultOllamaURL = url
	t.Cleanup(func() { defaultOllamaURL = old })
}
