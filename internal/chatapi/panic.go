package chatapi

import (
	"encoding/json"
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
	h, err := newHandler(cfg)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !h.admit(w, r) {
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, 4<<10+1))
		if err != nil || len(body) > 4<<10 {
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorBody{"the body is over 4 KiB or unreadable"})
			return
		}
		req := PanicRequest{Reason: "operator panic over the API"}
		if len(strings.TrimSpace(string(body))) > 0 {
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				writeJSON(w, http.StatusBadRequest, ErrorBody{`want nothing, or {"reason": "why"}`})
				return
			}
		}
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "accepted", "message": "the daemon is shutting down: it drains for up to 15 s and is forced out at 20 s"})
		if f, ok := w.(http.Flusher); ok {
			f.Flush()
		}
		trigger(clip(req.Reason))
	}), nil
}
