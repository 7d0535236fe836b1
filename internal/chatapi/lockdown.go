package chatapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall"
)

// Paths of the lockdown API.
const (
	UnlockPath  = "/api/v1/lockdown/unlock"
	ReissuePath = "/api/v1/lockdown/reissue"
)

// Lockdown is what the lockdown API drives; *firewall.Lockdown implements
// it.
type Lockdown interface {
	Unlock(ctx context.Context, code, by string) (firewall.UnlockResult, error)
	Reissue(ctx context.Context, operator string) error
}

// UnlockRequest is the body of POST UnlockPath.
type UnlockRequest struct {
	Code string `json:"code"`
}

// UnlockReply is the answer of the lockdown API.
type UnlockReply struct {
	Result  string `json:"result"`
	Message string `json:"message"`
}

// UnlockMessage says, in plain words, what an unlock result means and what
// to do next.
func UnlockMessage(r firewall.UnlockResult) string {
	switch r {
	case firewall.UnlockOK:
		return "the lockdown is lifted: chat turns are answered again"
	case firewall.UnlockNotLocked:
		return "the agent is not in lockdown"
	case firewall.UnlockExpired:
		return "the unlock code expired; ask for a new one (talos unlock --reissue)"
	case firewall.UnlockInvalidCode:
		return "the code is wrong; the attempt was counted"
	case firewall.UnlockExhausted:
		return "too many wrong codes; ask for a new one (talos unlock --reissue)"
	}
	return "unknown result " + string(r)
}

// NewLockdownHandlers returns the handlers of UnlockPath (POST {"code":
// "…"}: 200 unlocked, 409 not locked, 403 a wrong, expired or exhausted
// code) and ReissuePath (POST with an empty body or {}: a new code is
// delivered out of band, never in the answer), both behind the operator's
// credentials and the body cap.
func NewLockdownHandlers(cfg Config, l Lockdown) (map[string]http.Handler, error) {
	if l == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "chatapi.NewLockdownHandlers", "the Lockdown is nil")
	}
	h, err := newHandler(cfg)
	if err != nil {
		return nil, err
	}
	guard := func(next func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !h.admit(w, r) {
				return
			}
			body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
			if err != nil {
				writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{fmt.Sprintf("the request body is larger than %d bytes", h.cfg.MaxBodyBytes)})
				return
			}
			next(w, r, body)
		})
	}
	by := func(r *http.Request) string { u, _, _ := r.BasicAuth(); return "operator " + u + " over HTTP" }
	return map[string]http.Handler{
		UnlockPath: guard(func(w http.ResponseWriter, r *http.Request, body []byte) {
			req, err := ParseUnlock(body)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, ErrorBody{err.Error()})
				return
			}
			res, err := l.Unlock(r.Context(), req.Code, by(r))
			if err != nil {
				h.log.ErrorContext(r.Context(), "lockdown unlock could not be saved", "err", err)
				writeJSON(w, http.StatusInternalServerError, ErrorBody{"the lockdown state could not be saved; the agent stays locked, try again"})
				return
			}
			code := http.StatusForbidden
			switch res {
			case firewall.UnlockOK:
				code = http.StatusOK
			case firewall.UnlockNotLocked:
				code = http.StatusConflict
			}
			writeJSON(w, code, UnlockReply{Result: string(res), Message: UnlockMessage(res)})
		}),
		ReissuePath: guard(func(w http.ResponseWriter, r *http.Request, body []byte) {
			if b := bytes.TrimSpace(body); len(b) > 0 && string(b) != "{}" {
				writeJSON(w, http.StatusBadRequest, ErrorBody{"the body must be empty or {}: a re-issued code is delivered out of band, never in the answer"})
				return
			}
			if err := l.Reissue(r.Context(), by(r)); err != nil {
				code := http.StatusInternalServerError
				msg := "the new code could not be issued or delivered; try again"
				if strings.Contains(err.Error(), "not in lockdown") {
					code, msg = http.StatusConflict, "the agent is not in lockdown"
				}
				h.log.WarnContext(r.Context(), "lockdown re-issue failed", "err", err)
				writeJSON(w, code, ErrorBody{msg})
				return
			}
			writeJSON(w, http.StatusOK, UnlockReply{Result: "reissued", Message: "a new unlock code was delivered out of band (the unlock code file and the daemon's console); the old one no longer works"})
		}),
	}, nil
}

// admit checks the method, the client's rate and the credentials,
// answering the refusal.
func (h *handler) admit(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{"method " + clip(r.Method) + " is not allowed on " + clip(r.URL.Path) + "; use POST"})
		return false
	}
	if !h.limit(w, r) {
		return false
	}
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="talos operator"`)
		writeJSON(w, http.StatusUnauthorized, ErrorBody{"operator credentials required (BASIC_AUTH_USER / BASIC_AUTH_PASS from talos.env)"})
		return false
	}
	return true
}

// ParseUnlock reads {"code": "123456"}: one object, no other field, the
// code a string of 6 to 12 digits.
func ParseUnlock(body []byte) (UnlockRequest, error) {
	var req UnlockRequest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		return UnlockRequest{}, fmt.Errorf(`the body is not {"code": "<digits>"}: %s`, clip(err.Error()))
	}
	if dec.More() {
		return UnlockRequest{}, errors.New("the body holds more than one JSON value; send exactly one object")
	}
	c := strings.TrimSpace(req.Code)
	if len(c) < 6 || len(c) > 12 || strings.Trim(c, "0123456789") != "" {
		return UnlockRequest{}, fmt.Errorf("field code is %q: it must be the 6 to 12 digits that were delivered out of band", clip(req.Code))
	}
	req.Code = c
	return req, nil
}
