package sockproxy

import (
	"bytes"
	"context"
	"encoding/json"
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
	auditor *connAuditor // set before the connection is served; nil when not auditing
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

// Write passes the server's writes through, except the answer net/http
// writes itself, straight to the connection, to a request it could not
// parse (400, 431, 501, 505): that one is audited as a denial and replaced
// by the proxy's own 403 with a Docker-style {"message": …}, as every other
// forbidden request gets (a malformed request line is a forbidden
// request). Auditing here rather than when the connection
// closes also catches a malformed request pipelined behind a valid one.
func (c *capConn) Write(b []byte) (int, error) {
	if a := c.rec.auditor; a != nil {
		if status, text, ok := parseServerRejection(b); ok {
			id := talos.NewCorrelationID()
			a.rejected(c.rec, id, status, text)
			if _, err := c.Conn.Write(rejectionResponse(id, text)); err != nil {
				return 0, err
			}
			return len(b), nil
		}
	}
	return c.Conn.Write(b)
}

// parseServerRejection recognises a response net/http wrote itself for a
// request it could not parse: "HTTP/1.1 <code> <text>" followed by exactly
// its two headers. Every response that went through the proxy's handler
// carries talos.CorrelationHeader and Date as well, so it never matches.
func parseServerRejection(b []byte) (status int, text string, ok bool) {
	const prefix = "HTTP/1.1 "
	const headers = "\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n"
	// Every response's first write starts with a status line, so this runs
	// once per response: look only at the status line and what follows it.
	if len(b) <= len(prefix) || !bytes.HasPrefix(b, []byte(prefix)) || b[len(prefix)] != '4' && b[len(prefix)] != '5' {
		return 0, "", false
	}
	end := bytes.IndexByte(b, '\r')
	if end < 0 || !bytes.HasPrefix(b[end:], []byte(headers)) {
		return 0, "", false
	}
	line := b[len(prefix):end]
	if len(line) < 4 || line[3] != ' ' || bytes.IndexByte(line, '\n') >= 0 {
		return 0, "", false
	}
	code, err := strconv.Atoi(string(line[:3]))
	if err != nil || code < 400 || code > 599 {
		return 0, "", false
	}
	return code, string(line), true
}

// rejectionResponse is the proxy's 403 for a request the server could not
// parse; the connection closes after it, as net/http's own answer does.
func rejectionResponse(id, serverAnswer string) []byte {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{"sockproxy: malformed request (" + serverAnswer + "); nothing was forwarded"})
	body = append(body, '\n')
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nConnection: close\r\n")
	b.WriteString(talos.CorrelationHeader + ": " + id + "\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
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
	rec.auditor = a
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
			// No handler saw it and capConn.Write did not catch an answer:
			// the client left mid-request, or net/http answered it through
			// its response writer (an unsupported Expect: 417).
			a.record(rec.client, talos.NewCorrelationID(), line, n, 0,
				"malformed request: it never reached the proxy (incomplete, or answered by the HTTP server itself); nothing was forwarded")
		}
	}
}

// rejected audits a request the HTTP server could not parse and answered
// itself (see capConn.Write).
func (a *connAuditor) rejected(rec *connRecord, id string, serverStatus int, serverAnswer string) {
	rec.mu.Lock()
	rec.pending = false // audited now, not again when the connection closes
	line, n := renderRequestLine(rec.capture), rec.nread
	if len(rec.capture) == 0 {
		line = "(not captured: it followed an earlier request on the connection)"
	}
	rec.mu.Unlock()
	a.record(rec.client, id, line, n, http.StatusForbidden,
		"malformed request: the HTTP server could not parse it ("+serverAnswer+"); nothing was forwarded",
		"server_status", serverStatus)
}

// record writes one malformed-request denial to the audit log; status is
// what the client was answered (0: nothing the proxy knows of).
func (a *connAuditor) record(client clientInfo, id, line string, nread int64, status int, reason string, extra ...any) {
	a.denied()
	attrs := []any{"correlation_id", id, "client", client.desc, "event", "sockproxy.deny", "profile", a.profile}
	if status != 0 {
		attrs = append(attrs, "status", status)
	}
	attrs = append(attrs, "code", string(talos.CodePolicyDenied), "reason", reason, "request_line", line, "bytes_read", nread)
	a.audit.Warn("sockproxy: request denied", append(attrs, extra...)...)
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
