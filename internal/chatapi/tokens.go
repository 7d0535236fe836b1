package chatapi

import (
	"context"
	"net/http"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/orchestrator"
)

// TokensPath serves the token tracker's summary (GET).
const TokensPath = "/api/v1/tokens"

// TokenSummarizer reports the token counts; *orchestrator.Tracker
// implements it.
type TokenSummarizer interface {
	Summary(ctx context.Context) (orchestrator.TokenSummary, error)
}

// NewTokensHandler returns the handler of GET TokensPath, behind the
// operator's credentials and the rate limit: the orchestrator.TokenSummary
// as JSON (this process's session counts, today's counts per model with the
// daily total and limit, and seven days of history, today first). A Redis
// outage still answers 200, with this process's counts and a note.
func NewTokensHandler(cfg Config, s TokenSummarizer) (http.Handler, error) {
	if s == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "chatapi.NewTokensHandler", "the TokenSummarizer is nil: pass the agent's token tracker")
	}
	h, err := newHandler(cfg)
	if err != nil {
		return nil, err
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			writeJSON(w, http.StatusMethodNotAllowed, ErrorBody{"method " + clip(r.Method) + " is not allowed on " + TokensPath + "; use GET"})
			return
		}
		if !h.limit(w, r) || !h.authorizedOrRefuse(w, r) {
			return
		}
		sum, err := s.Summary(r.Context())
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, ErrorBody{"the token counts could not be read: the request ended first"})
			return
		}
		writeJSON(w, http.StatusOK, sum)
	}), nil
}
