package chatapi

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/redact"
)

// DreamPath is POST /api/v1/dream/run: a maintenance cycle now, in the
// daemon, behind the operator credentials. The answer is the cycle's
// report. Running it in the daemon matters for an embedded store whose
// index lives in the daemon's memory (chromem): a cycle in another process
// would change the files under that index.
const DreamPath = "/api/v1/dream/run"

// DreamRequest is the optional body of a dream run: why, for the report.
type DreamRequest struct {
	Reason string `json:"reason"`
}

// NewDreamHandler returns the handler of DreamPath. run runs one cycle
// with the reason and returns its report; it must refuse with
// talos.ErrMaintenanceBusy while another cycle runs. The answer is 200
// with the report (whatever its outcome), 409 when a cycle is already
// running, 500 with the reason when the cycle could not run. The request
// may last as long as a cycle (dream.DefaultCycleTimeout); a client that
// hangs up cancels the cycle, as Ctrl-C would in the terminal.
func NewDreamHandler(cfg Config, run func(ctx context.Context, reason string) (*dream.Report, error)) (http.Handler, error) {
	if run == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "chatapi.NewDreamHandler", "run is nil")
	}
	return newReasonHandler(cfg, "operator: POST "+DreamPath, func(h *handler, w http.ResponseWriter, r *http.Request, reason string) {
		if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(dream.DefaultCycleTimeout + time.Minute)); err != nil && !errors.Is(err, http.ErrNotSupported) {
			h.log.Warn("cannot lift the write deadline for a dream cycle: its report may not reach the client if the cycle outlasts the server's write timeout", "err", err)
		}
		rep, err := run(r.Context(), reason)
		switch {
		case errors.Is(err, talos.ErrMaintenanceBusy):
			writeJSON(w, http.StatusConflict, ErrorBody{redact.Text(err.Error())})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, ErrorBody{redact.Text(err.Error())})
		default:
			writeJSON(w, http.StatusOK, rep)
		}
	})
}
