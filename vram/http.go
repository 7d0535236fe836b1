package vram

import (
	"encoding/json"
	"net/http"
)

// HandlerPath is where the daemon mounts Handler; `talos gpu status` reads
// the mutex's state from it.
const HandlerPath = "/vram"

// Handler serves m.Stats() as JSON on GET (and HEAD). It is read-only:
// Reset is deliberately not exposed over HTTP.
func Handler(m *Mutex) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: use GET", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		_ = json.NewEncoder(w).Encode(m.Stats())
	})
}
