package tlog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
)

// CorrelationKey is the JSON key of the correlation ID on every line.
const CorrelationKey = "correlation_id"

// CorrelationHeader is the HTTP header that carries a correlation ID: a
// server accepts a valid one from the request (else mints its own) and
// echoes the ID it used in the response.
const CorrelationHeader = "X-Talos-Correlation-Id"

type cidKey struct{}

// NewCorrelationID returns 16 lower-case hex characters (64 random bits from
// crypto/rand), the ID every request carries (DESIGN §3 "Logging").
func NewCorrelationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails on supported platforms (Go ≥ 1.24)
	return hex.EncodeToString(b[:])
}

// ValidCorrelationID reports whether id is exactly 16 lower-case hex
// characters. Use it before trusting an ID that came from outside (an HTTP
// header, for example).
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

// WithCorrelationID returns a context carrying id. Every tlog handler (and
// any handler wrapped with WithCorrelation) adds it to each record logged
// with that context. An invalid id is replaced by a fresh one, so a log line
// never carries attacker-chosen text in this field.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	if !ValidCorrelationID(id) {
		id = NewCorrelationID()
	}
	return context.WithValue(ctx, cidKey{}, id)
}

// CorrelationID returns the ID carried by ctx, or "".
func CorrelationID(ctx context.Context) string {
	if ctx == nil {
		return ""
	}
	id, _ := ctx.Value(cidKey{}).(string)
	return id
}

// EnsureCorrelationID returns ctx unchanged if it carries an ID, otherwise a
// child context with a new one; it also returns the ID.
func EnsureCorrelationID(ctx context.Context) (context.Context, string) {
	if id := CorrelationID(ctx); id != "" {
		return ctx, id
	}
	id := NewCorrelationID()
	return context.WithValue(ctx, cidKey{}, id), id
}

// WithCorrelation wraps any slog.Handler (a console handler, say) so that it
// adds the context's correlation ID to each record as correlation_id.
// The attribute is added at the top level only when the wrapped handler has
// no open group; inside a group it lands in the group.
func WithCorrelation(h slog.Handler) slog.Handler { return cidHandler{h} }

type cidHandler struct{ h slog.Handler }

func (c cidHandler) Enabled(ctx context.Context, l slog.Level) bool { return c.h.Enabled(ctx, l) }

func (c cidHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := CorrelationID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String(CorrelationKey, id))
	}
	return c.h.Handle(ctx, r)
}

func (c cidHandler) WithAttrs(as []slog.Attr) slog.Handler { return cidHandler{c.h.WithAttrs(as)} }
func (c cidHandler) WithGroup(name string) slog.Handler    { return cidHandler{c.h.WithGroup(name)} }
