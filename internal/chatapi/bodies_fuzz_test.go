package chatapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/host"
)

// Arbitrary bodies to the panic and skill endpoints: never a crash, never a
// 5xx, and the panic fires only for what the handler accepted.
func FuzzOperatorBodies(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"reason":"x"}`, `{"ref":"a@1.0.0#ab"}`, `{"ref":1}`, `[`, `{"reason":"x","extra":1}`, strings.Repeat("a", 5000)} {
		f.Add(s)
	}
	const pass = "Str0ng!Passw0rd#2026"
	fired := 0
	ph, err := chatapi.NewPanicHandler(chatapi.Config{User: "admin", Pass: pass, RateLimit: 1 << 30}, func(string) { fired++ })
	if err != nil {
		f.Fatal(err)
	}
	sh, err := chatapi.NewSkillHandlers(chatapi.Config{User: "admin", Pass: pass, RateLimit: 1 << 30},
		func() (*host.Skills, error) { return nil, context.Canceled })
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body string) {
		for _, h := range []http.Handler{ph, sh[chatapi.SkillScanPath], sh[chatapi.SkillRejectPath], sh[chatapi.SkillRunPath], sh[chatapi.SkillAddPath]} {
			before := fired
			req := httptest.NewRequest("POST", "/", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.SetBasicAuth("admin", pass)
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code >= 500 && w.Code != http.StatusServiceUnavailable {
				t.Fatalf("body %q: status %d", body, w.Code)
			}
			if fired != before && w.Code != http.StatusAccepted {
				t.Fatalf("body %q: the panic fired with status %d", body, w.Code)
			}
		}
	})
}
