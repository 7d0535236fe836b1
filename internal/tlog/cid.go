package tlog

import (
	"context"
	"log/slog"

	"github.com/talos-ironclad/talos"
)

// The correlation-ID primitives live in the root package, which SDK users
// import; tlog keeps these names so the daemon's code reads as before. They
// share one context key: an ID set with either is seen by both.

// CorrelationKey is the JSON key of the correlation ID on every line.
const CorrelationKey = talos.CorrelationKey

// CorrelationHeader is the HTTP header that carries a correlation ID.
const CorrelationHeader = talos.CorrelationHeader

// NewCorrelationID returns 16 lower-case hex characters (talos.NewCorrelationID).
func NewCorrelationID() string { return talos.NewCorrelationID() }

// ValidCorrelationID reports whether id is exactly 16 lower-case hex
// characters (talos.ValidCorrelationID).
func ValidCorrelationID(id string) bool { return talos.ValidCorrelationID(id) }

// WithCorrelationID returns a context carrying id, or a fresh ID when id is
// invalid (talos.WithCorrelationID).
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return talos.WithCorrelationID(ctx, id)
}

// CorrelationID returns the ID carried by ctx, or "" (talos.CorrelationID).
func CorrelationID(ctx context.Context) string { return talos.CorrelationID(ctx) }

// EnsureCorrelationID returns ctx and its ID, adding a new ID when ctx has
// none (talos.EnsureCorrelationID).
func EnsureCorrelationID(ctx context.Context) (context.Context, string) {
	return talos.EnsureCorrelationID(ctx)
}

// WithCorrelation wraps h so that it adds the context's correlation ID to
// each record (talos.WithCorrelation).
func WithCorrelation(h slog.Handler) slog.Handler { return talos.WithCorrelation(h) }
