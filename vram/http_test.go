package vram_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"

	"github.com/talos-ironclad/talos/vram"
)

func TestHandler(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFixture(t, vram.Config{})
		l := mustAcquire(t, f.m, coder)
		defer l.Release()
		h := vram.Handler(f.m)

		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, vram.HandlerPath, nil))
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("GET: %d %v", rec.Code, rec.Header())
		}
		var s vram.Stats
		if err := json.Unmarshal(rec.Body.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		if s.State != vram.Ready || s.Model != coder || s.Leases != 1 {
			t.Fatalf("served stats %+v", s)
		}
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, vram.HandlerPath, nil))
		if rec.Code != http.StatusMethodNotAllowed {
			t.Fatalf("POST: %d, want 405", rec.Code)
		}
	})
}
