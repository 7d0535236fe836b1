package orchestrator

import (
	"testing"
	"time"
)

// The counters' keys come back from Redis, where anything may sit under
// talos:tokens:*: a key is accepted only when it reads back as the key of
// its model, day and kind, model names with ':' included.
func FuzzParseTokenKey(f *testing.F) {
	for _, k := range []string{"talos:tokens:qwen2.5-coder:7b:2026-12-07:prompt", "talos:tokens:gemini-2.5-flash:2026-12-07:completion",
		"talos:tokens::2026-12-07:prompt", "talos:tokens:m:2026-13-40:prompt", "talos:tokens:m:2026-12-07:total", "talos:breaker:gemini"} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		model, day, kind, ok := parseTokenKey(key)
		if !ok {
			return
		}
		if model == "" || (kind != "prompt" && kind != "completion") || tokenKey(model, day, kind) != key {
			t.Fatalf("%q parsed as %q %q %q", key, model, day, kind)
		}
		if _, err := time.Parse(time.DateOnly, day); err != nil {
			t.Fatalf("%q: day %q: %v", key, day, err)
		}
	})
}
