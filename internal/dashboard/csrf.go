package dashboard

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
)

// SessionPath returns the page's session: the operator's name and the
// CSRF token every state-changing request must carry in CSRFHeader. Only
// the dashboard's own pages can read it (no cross-origin reads are
// allowed).
const SessionPath = "/api/session"

// CSRFHeader carries the CSRF token on every POST.
const CSRFHeader = "X-CSRF-Token"

// Session is the JSON of SessionPath.
type Session struct {
	User string `json:"user"`
	CSRF string `json:"csrf"`
}

func newCSRFToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (d *Dashboard) serveSession(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, Session{User: d.cfg.User, CSRF: d.csrf})
}

// checkCSRF refuses every request other than GET, HEAD and OPTIONS that
// does not carry the dashboard's CSRF token in CSRFHeader: a page of
// another origin can neither read the token nor send that header without
// the dashboard's consent. It comes on top of the Origin check.
// Requests no route takes get their 404 or 405 from mux.
func (d *Dashboard) checkCSRF(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			mux.ServeHTTP(w, r)
			return
		}
		if _, pattern := mux.Handler(r); pattern == "" {
			mux.ServeHTTP(w, r)
			return
		}
		got := r.Header.Get(CSRFHeader)
		if subtle.ConstantTimeCompare([]byte(got), []byte(d.csrf)) != 1 {
			d.log.Warn("dashboard refused a request without its CSRF token", "method", r.Method, "path", r.URL.Path,
				"token_present", got != "")
			writeJSON(w, http.StatusForbidden, errorBody{Error: "missing or wrong " + CSRFHeader + ": reload the dashboard page and try again"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}
