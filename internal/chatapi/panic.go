package chatapi

import (
	"io"
	"net/http"
	"strings"

	"github.com/talos-ironclad/talos"
)

// PanicPath is POST /api/v1/panic: the daemon's one graceful shutdown,
// behind the operator credentials.
const PanicPath = "/api/v1/panic"

// PanicRequest is the optional body of a panic: why, for the audit log.
type PanicRequest struct {
	Reason string `json:"reason"`
}

// NewPanicHandler returns the handler of PanicPath. trigger starts the
// shutdown with the reason (it must return at once); the answer is 202
// before the daemon stops, since the shutdown closes this server too.
func NewPanicHandler(cfg Config, trigger func(reason string)) (http.Handler, error) {
	if trigger == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "chatapi.NewPanicHandler", "the trigger is nil")
	}
	return newReasonHandler(cfg, "operator panic over the API", func(_ *handler, w http.ResponseWriter, r *http.Request, reason string) {
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "message": "the daemon is shutting down: it drains for up to 15 s and is forced out at 20 s"})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		trigger(reason)
	})
}

// newReasonHandler is the handler of an operator action that takes an
// optional reason (panic, dream run): admitted like every operator request
// (POST only, the client's rate, the credentials), its body read by
// optionalReason (fallback when empty), then act runs with the reason.
func newReasonHandler(cfg Config, fallback string, act func(h *handler, w http.ResponseWriter, r *http.Request, reason string)) (http.Handler, error) {
	h, err := newHandler(cfg)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.admit(w, r) {
			return
		}
		reason, ok := optionalReason(w, r, fallback)
		if !ok {
			return
		}
		act(h, w, r, reason)
	}), nil
}

// reasonSpec is the optional body of the operator actions that take a
// reason (panic, dream run).
var reasonSpec = ObjectSpec{What: "the request body", Hint: `send nothing, or {"reason": "why"}`, Fields: []string{"reason"}}

// optionalReason reads r's body: nothing, or {"reason": "why"} of at most
// 4 KiB. It returns the reason (clipped; fallback when none is given), or
// answers the problem itself and returns false.
func optionalReason(w http.ResponseWriter, r *http.Request, fallback string) (string, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10+1))
	if err != nil || len(body) > 4<<10 {
		writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{"the body is over 4 KiB or unreadable"})
		return "", false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		return fallback, true
	}
	f, problems, err := reasonSpec.Decode(body)
	if err == nil {
		err = Problems(problems)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, ErrorBody{err.Error()})
		return "", false
	}
	if s := strings.TrimSpace(f["reason"]); s != "" {
		return clip(s), true
	}
	return fallback, true
}
