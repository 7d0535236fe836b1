package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/vram"
)

func TestPostVRAMReset(t *testing.T) {
	state := "error"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != vram.ResetPath {
			http.NotFound(w, r)
			return
		}
		if u, p, ok := r.BasicAuth(); !ok || u != "admin" || p != "Correct-Horse-Battery-9" || r.Method != http.MethodPost {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if state != "error" {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{"message": "the VRAM mutex is " + state + ", not in error: nothing to reset"})
			return
		}
		state = "idle"
		_ = json.NewEncoder(w).Encode(vram.Stats{State: vram.Idle})
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	ctx := context.Background()
	if msg, err := postVRAMReset(ctx, addr, "admin", "Correct-Horse-Battery-9"); err != nil || !strings.Contains(msg, "reset: now idle") {
		t.Fatalf("reset in error: %q, %v", msg, err)
	}
	if msg, err := postVRAMReset(ctx, addr, "admin", "Correct-Horse-Battery-9"); err != nil || !strings.Contains(msg, "nothing to reset") {
		t.Fatalf("second reset: %q, %v", msg, err)
	}
	if _, err := postVRAMReset(ctx, addr, "admin", "wrong"); err == nil || !strings.Contains(err.Error(), "refused the operator credentials") {
		t.Fatalf("wrong password: %v", err)
	}
	nf := httptest.NewServer(http.NotFoundHandler())
	defer nf.Close()
	if _, err := postVRAMReset(ctx, strings.TrimPrefix(nf.URL, "http://"), "admin", "x"); err == nil || !strings.Contains(err.Error(), "no VRAM mutex") {
		t.Fatalf("daemon without a mutex: %v", err)
	}
}
