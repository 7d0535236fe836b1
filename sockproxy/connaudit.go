package sockproxy

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/talos-ironclad/talos"
)

// malformedCaptureBytes is how many bytes of a request that never reached
// the proxy's handler are kept for its audit record.
const malformedCaptureBytes = 64

// connRecord is what the server knows about one connection: who the peer
// is, whether bytes of a request have arrived that have not (yet) reached
// the handler, and the first bytes read since the connection was last idle.
type connRecord struct {
	client  clientInfo
	mu      sync.Mutex
	pending bool // bytes of a request read, handler not reached
	capture []byte
	nread   int64
}

// note records bytes read from the connection (first malformedCaptureBytes
// since the last idle state only).
func (r *connRecord) note(b []byte) {
	r.mu.Lock()
	r.nread += int64(len(b))
	if n := malformedCaptureBytes - len(r.capture); n > 0 {
		r.capture = append(r.capture, b[:min(n, len(b))]...)
	}
	r.mu.Unlock()
}

type connRecordKey struct{}

// capConn feeds what is read from a connection to its record.
type capConn struct {
	net.Conn
	rec *connRecord
}

func (c *capConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		c.rec.note(b[:n])
	}
	return n, err
}

// capListener wraps accepted connections so their first bytes are recorded;
// the peer identity is taken from the unwrapped connection.
type capListener struct{ net.Listener }

func (l capListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &capConn{Conn: c, rec: &connRecord{client: peerInfo(c)}}, nil
}

// connAuditor audits connections whose request never reached the handler:
// net/http answers a request line or header block it cannot parse (or an
// unsupported Expect) itself, and without this nothing would record it.
type connAuditor struct {
	audit   *slog.Logger
	profile string
	denied  func()
	conns   sync.Map // net.Conn → *connRecord
}

func (a *connAuditor) connContext(ctx context.Context, c net.Conn) context.Context {
	var rec *connRecord
	if cc, ok := c.(*capConn); ok {
		rec = cc.rec
	} else {
		rec = &connRecord{client: peerInfo(c)}
	}
	a.conns.Store(c, rec)
	ctx = context.WithValue(ctx, connRecordKey{}, rec)
	return context.WithValue(ctx, clientKey{}, rec.client)
}

func (a *connAuditor) connState(c net.Conn, s http.ConnState) {
	v, ok := a.conns.Load(c)
	if !ok {
		return
	}
	rec := v.(*connRecord)
	switch s {
	case http.StateActive:
		// Set by net/http once bytes of a new request have been read.
		rec.mu.Lock()
		rec.pending = true
		rec.mu.Unlock()
	case http.StateIdle:
		rec.mu.Lock()
		rec.pending = false
		rec.capture = rec.capture[:0]
		rec.mu.Unlock()
	case http.StateHijacked:
		a.conns.Delete(c)
	case http.StateClosed:
		a.conns.Delete(c)
		rec.mu.Lock()
		pending, line, n := rec.pending, renderRequestLine(rec.capture), rec.nread
		rec.mu.Unlock()
		if pending {
			a.denied()
			a.audit.Warn("sockproxy: request denied",
				"correlation_id", correlationID(), "client", rec.client.desc,
				"event", "sockproxy.deny", "profile", a.profile, "status", http.StatusBadRequest,
				"code", string(talos.CodePolicyDenied),
				"reason", "malformed request: the HTTP server could not parse it and answered it itself; nothing was forwarded",
				"request_line", line, "bytes_read", n)
		}
	}
}

// handler marks that a request reached the proxy's handler.
func (a *connAuditor) handler(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := r.Context().Value(connRecordKey{}).(*connRecord); ok {
			rec.mu.Lock()
			rec.pending = false
			rec.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

// renderRequestLine renders captured bytes for an audit record: only the
// first line (a header line, which could carry a credential, is withheld),
// at most malformedCaptureBytes bytes, quoted with every non-printable or
// non-UTF-8 byte escaped.
func renderRequestLine(b []byte) string {
	if len(b) > malformedCaptureBytes {
		b = b[:malformedCaptureBytes]
	}
	cut := len(b)
	for i, c := range b {
		if c == '\r' || c == '\n' {
			cut = i
			break
		}
	}
	line := b[:cut]
	if looksLikeHeader(line) {
		return "(a header line, withheld)"
	}
	truncated := cut == len(b) && len(b) == malformedCaptureBytes
	// QuoteToASCII escapes control bytes, non-ASCII runes and invalid UTF-8.
	out := strconv.AppendQuoteToASCII(nil, string(line))
	if truncated {
		out = append(out, "…"...)
	}
	return string(out)
}

// looksLikeHeader reports whether line starts with "token:" (a header
// field) rather than a method followed by a space.
func looksLikeHeader(line []byte) bool {
	for i, c := range line {
		switch {
		case c == ':':
			return i > 0
		case c == ' ' || c == '\t':
			return false
		case c < 0x21 || c == 0x7f:
			return false
		}
	}
	return false
}
