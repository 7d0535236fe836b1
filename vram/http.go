package vram

import (
	"encoding/json"
	"net/http"
)

// HandlerPath is where the daemon mounts Handler; `talos gpu status` reads
// the mutex's state from it.
const HandlerPath = "/vram"

// Handler serves m.Stats() as JSON on GET (and HEAD). It is read-only and
// unauthenticated (the health server is loopback only); Reset has its own
// handler, ResetHandler, which must sit behind authentication.
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

// ResetPath is where the daemon mounts ResetHandler (behind the operator's
// credentials); `talos gpu reset` posts to it.
const ResetPath = "/vram/reset"

// ResetHandler lets an operator take m out of Error (GPU_UNRECOVERABLE) with
// a POST, after freeing the GPU by hand: 200 with the stats after Reset, 409
// when m is not in Error (nothing is changed). It does no authentication of
// its own: mount it only behind one, as the daemon does with the dashboard's
// credentials, since Reset tells the mutex to trust the GPU again.
func ResetHandler(m *Mutex) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "method not allowed: use POST", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if st := m.Stats().State; st != Error {
			w.WriteHeader(http.StatusConflict)
			_ = json.NewEncoder(w).Encode(map[string]string{
				"message": "the VRAM mutex is " + st.String() + ", not in error: nothing to reset",
			})
			return
		}
		m.Reset()
		_ = json.NewEncoder(w).Encode(m.Stats())
	})
}
