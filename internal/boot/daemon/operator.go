package daemon

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// operatorOnly lets a request through to h only with the operator's
// credentials (BASIC_AUTH_USER / BASIC_AUTH_PASS, the dashboard's, from the
// 0600 talos.env), compared in constant time. The health server is loopback
// only but unauthenticated; actions that change state, such as taking the
// VRAM mutex out of Error, need more than being on the machine. With no
// password configured nothing gets through.
func operatorOnly(user, pass string, h http.Handler) http.Handler {
	wantUser, wantPass := sha256.Sum256([]byte(user)), sha256.Sum256([]byte(pass))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		gotUser, gotPass := sha256.Sum256([]byte(u)), sha256.Sum256([]byte(p))
		userOK := subtle.ConstantTimeCompare(gotUser[:], wantUser[:])
		passOK := subtle.ConstantTimeCompare(gotPass[:], wantPass[:])
		if !ok || pass == "" || userOK&passOK != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="talos operator"`)
			http.Error(w, "operator credentials required (BASIC_AUTH_USER / BASIC_AUTH_PASS from talos.env)", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
