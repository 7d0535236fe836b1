package talos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// CorrelationKey is the log attribute (and JSON key) that carries a
// request's correlation ID on every line logged with its context.
const CorrelationKey = "correlation_id"

// CorrelationHeader is the HTTP header that carries a correlation ID: a
// server accepts a valid one from the request (else mints its own) and
// echoes the ID it used in the response.
const CorrelationHeader = "X-Talos-Correlation-Id"

type correlationKey struct{}

// NewCorrelationID returns 16 lower-case hex characters (64 random bits
// from crypto/rand): the ID every request carries through its logs, audit
// records and answers.
func NewCorrelationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// ValidCorrelationID reports whether id is exactly 16 lower-case hex
// characters. Check an ID that came from outside (an HTTP header, say)
// with it before trusting it.
func ValidCorrelationID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// WithCorrelationID returns a context carrying id; a handler wrapped with
// WithCorrelation adds it to each record logged with that context. An
// invalid id is replaced by a fresh one, so a log line never carries
// attacker-chosen text in this field.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	if !ValidCorrelationID(id) {
		id = NewCorrelationID()
	}
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the ID carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// EnsureCorrelationID returns ctx unchanged if it carries an ID, otherwise
// a child context with a new one; it also returns the ID.
func EnsureCorrelationID(ctx context.Context) (context.Context, string) {
	if id := CorrelationID(ctx); id != "" {
		return ctx, id
	}
	id := NewCorrelationID()
	return context.WithValue(ctx, correlationKey{}, id), id
}

// WithCorrelation wraps any slog.Handler so that it adds the context's
// correlation ID to each record as CorrelationKey: library code that logs
// with the request's context (InfoContext, WarnContext, …) then gets the
// ID on every line. The attribute lands at the top level when the wrapped
// handler has no open group, inside the group otherwise.
func WithCorrelation(h slog.Handler) slog.Handler { return correlationHandler{h} }

type correlationHandler struct{ h slog.Handler }

func (c correlationHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return c.h.Enabled(ctx, l)
}

func (c correlationHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := CorrelationID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(CorrelationKey, id))
	}
	return c.h.Handle(ctx, r)
}

func (c correlationHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return correlationHandler{c.h.WithAttrs(as)}
}

func (c correlationHandler) WithGroup(name string) slog.Handler {
	return correlationHandler{c.h.WithGroup(name)}
}
