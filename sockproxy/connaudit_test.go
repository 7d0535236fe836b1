package sockproxy

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/talos-ironclad/talos/internal/testenv"

	"github.com/talos-ironclad/talos"
)

// lockedBuf collects audit records (JSON lines).
type lockedBuf struct{ testenv.LockedBuffer }

// records returns the audit records whose reason starts with prefix.
func (l *lockedBuf) records(prefix string) []map[string]any {
	var out []map[string]any
	for _, m := range l.JSONLines() {
		if r, _ := m["reason"].(string); strings.HasPrefix(r, prefix) {
			out = append(out, m)
		}
	}
	return out
}

// connWatch counts the connections a server opened and those it is done
// with (closed or hijacked), so a test waits for the server to have handled
// every connection instead of sleeping and hoping.
type connWatch struct {
	mu           sync.Mutex
	opened, done int
	changed      chan struct{} // closed and replaced on every change
}

func newConnWatch() *connWatch { return &connWatch{changed: make(chan struct{})} }

// hook wraps a server's ConnState: the original runs first, so whatever it
// records (an audit line at close) is written when the watch counts it.
func (w *connWatch) hook(inner func(net.Conn, http.ConnState)) func(net.Conn, http.ConnState) {
	return func(c net.Conn, s http.ConnState) {
		inner(c, s)
		w.mu.Lock()
		defer w.mu.Unlock()
		switch s {
		case http.StateNew:
			w.opened++
		case http.StateClosed, http.StateHijacked:
			w.done++
		default:
			return
		}
		close(w.changed)
		w.changed = make(chan struct{})
	}
}

// waitOpened blocks until the server has accepted at least n connections.
func (w *connWatch) waitOpened(t *testing.T, n int) {
	t.Helper()
	w.waitFor(t, fmt.Sprintf("%d connections accepted", n), func() bool { return w.opened >= n })
}

// waitDone blocks until the server has accepted at least n connections and
// is done with every connection it accepted.
func (w *connWatch) waitDone(t *testing.T, n int) {
	t.Helper()
	w.waitFor(t, fmt.Sprintf("the server done with all of at least %d connections", n), func() bool { return w.opened >= n && w.done == w.opened })
}

func (w *connWatch) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	guard := time.NewTimer(10 * time.Second) // only a hang guard: the wait ends on the event
	defer guard.Stop()
	for {
		w.mu.Lock()
		ok, ch, o, d := cond(), w.changed, w.opened, w.done
		w.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-ch:
		case <-guard.C:
			t.Fatalf("waited 10 s for %s (opened %d, done %d)", what, o, d)
		}
	}
}

// serveForTest serves a proxy (fake engine) with Serve on a unix socket.
func serveForTest(t *testing.T, middleware ...func(http.Handler) http.Handler) (string, *Proxy, *lockedBuf, *connWatch) {
	t.Helper()
	audit := &lockedBuf{}
	f := newFakeEngine()
	p, err := New(Config{Transport: handlerTransport{f}, Audit: slog.New(slog.NewJSONHandler(audit, nil))})
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "spm")
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "s")
	ln, err := Listen("unix://"+sock, ListenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w := newConnWatch()
	srv := NewServer(p, middleware...)
	srv.ConnState = w.hook(srv.ConnState)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, srv) }()
	t.Cleanup(func() { cancel(); <-done })
	return sock, p, audit, w
}

func TestMalformedRequestAudited(t *testing.T) {
	sock, p, audit, w := serveForTest(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GARBAGE\r\nAuthorization: Bearer secret\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("answer %v, %v; want 403", resp, err)
	}
	var msg struct{ Message string }
	if err := json.NewDecoder(resp.Body).Decode(&msg); err != nil || !strings.Contains(msg.Message, "malformed request (400 Bad Request") ||
		resp.Header.Get("Content-Type") != "application/json" || !resp.Close {
		t.Fatalf("answer body %q (%v), headers %v; want a JSON message and Connection: close", msg.Message, err, resp.Header)
	}
	// Audited before the answer was written, not when the connection closes.
	recs := audit.records("malformed request")
	if len(recs) != 1 {
		t.Fatalf("%d malformed-request records; want 1", len(recs))
	}
	r := recs[0]
	if r["request_line"] != `"GARBAGE"` || r["code"] != "T406" || r["status"] != float64(403) || r["server_status"] != float64(400) ||
		r["event"] != "sockproxy.deny" || r["correlation_id"] != resp.Header.Get(talos.CorrelationHeader) ||
		!strings.HasPrefix(r["client"].(string), "uid:") {
		t.Errorf("record %v", r)
	}
	c.Close()
	w.waitDone(t, 1)
	if recs := audit.records("malformed request"); len(recs) != 1 {
		t.Fatalf("%d records after the close; want the one", len(recs))
	}
	if strings.Contains(audit.String(), "secret") {
		t.Error("the audit log holds the Authorization header")
	}
	if p.Stats().Denied != 1 || p.Stats().Allowed != 0 {
		t.Errorf("stats %+v", p.Stats())
	}
}

// TestMalformedRequestPipelined: a malformed request sent in the same write
// as a valid one (so it never causes a read of its own) is still denied
// and audited.
func TestMalformedRequestPipelined(t *testing.T) {
	sock, p, audit, _ := serveForTest(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\nGET /_ping HTTP/1.1 junk\r\nHost: d\r\n\r\n")
	br := bufio.NewReader(c)
	for i, want := range []int{200, 403} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("answer %d: %v, %v; want %d", i, resp, err, want)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	recs := audit.records("malformed request")
	if len(recs) != 1 || recs[0]["server_status"] != float64(400) {
		t.Fatalf("records %v; want one malformed-request denial", recs)
	}
	if s := p.Stats(); s.Allowed != 1 || s.Denied != 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestUnreachedRequestsAudited: a request cut off mid-header is a malformed
// one (403, audited at once); a request net/http answers through its own
// response writer (an unsupported Expect: 417) is recorded, without a
// status, when the connection closes.
func TestUnreachedRequestsAudited(t *testing.T) {
	sock, _, audit, w := serveForTest(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "POST /containers/create HTTP/1.1\r\nHost: d\r\n")
	c.(*net.UnixConn).CloseWrite()
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("cut-off request: %v, %v; want 403", resp, err)
	}
	c.Close()
	if recs := audit.records("malformed request"); len(recs) != 1 || recs[0]["request_line"] != `"POST /containers/create HTTP/1.1"` {
		t.Fatalf("records %v; want one for the cut-off request", recs)
	}

	c, err = net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.WriteString(c, "GET /_ping HTTP/1.1\r\nHost: d\r\nExpect: teapot\r\n\r\n")
	resp, err = http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusExpectationFailed {
		t.Fatalf("unsupported Expect: %v, %v; want 417", resp, err)
	}
	c.Close()
	w.waitDone(t, 2)
	recs := audit.records("malformed request")
	if len(recs) != 2 || recs[1]["status"] != nil || recs[1]["request_line"] != `"GET /_ping HTTP/1.1"` {
		t.Fatalf("records %v; want a second one, without a status", recs)
	}
}

func TestParseServerRejection(t *testing.T) {
	for _, tc := range []struct {
		in     string
		status int
	}{
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n400 Bad Request", 400},
		{"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n431 Request Header Fields Too Large", 431},
		{"HTTP/1.1 505 HTTP Version Not Supported: unsupported protocol version\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n505", 505},
		// Answers that went through the handler carry more headers.
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nX-Talos-Correlation-Id: 0123456789abcdef\r\nConnection: close\r\n\r\n", 0},
		{"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nDate: x\r\nConnection: close\r\n\r\n", 0},
		{"HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n", 0},
		{"{\"message\":\"HTTP/1.1 400 x\"}", 0},
		{"", 0},
	} {
		status, _, ok := parseServerRejection([]byte(tc.in))
		if status != tc.status || ok != (tc.status != 0) {
			t.Errorf("%.50q: %d %v; want %d", tc.in, status, ok, tc.status)
		}
	}
}

func TestNoMalformedRecordForSilentOrValidClients(t *testing.T) {
	sock, _, audit, w := serveForTest(t)
	// Connects and sends nothing (closing once the server has accepted it).
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	w.waitOpened(t, 1)
	c.Close()

	// Two valid requests on one keep-alive connection (one forwarded, one
	// denied by policy), then closed while idle.
	c, err = net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(c)
	for _, req := range []string{
		"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n",
		"GET /images/json HTTP/1.1\r\nHost: d\r\n\r\n",
		"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
	} {
		_, _ = io.WriteString(c, req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	c.Close()

	// The standard client over the same socket.
	var dials atomic.Int32
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		dials.Add(1)
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	for range 3 {
		resp, err := hc.Get("http://d/version")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	hc.CloseIdleConnections()
	// Every connection's close has been handled, so any record it would
	// cause is written by now.
	w.waitDone(t, 2+int(dials.Load()))
	if recs := audit.records("malformed request"); len(recs) != 0 {
		t.Fatalf("false malformed-request records: %v", recs)
	}
}

func TestOptionsAsteriskDeniedByProxy(t *testing.T) {
	sock, _, audit, _ := serveForTest(t)
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = io.WriteString(c, "OPTIONS * HTTP/1.1\r\nHost: d\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 403 {
		t.Fatalf("OPTIONS *: %v, %v; want 403", resp, err)
	}
	if len(audit.records("request target")) != 1 {
		t.Error("OPTIONS * not audited")
	}
}

func TestRenderRequestLine(t *testing.T) {
	for in, want := range map[string]string{
		"GARBAGE\r\n\r\n":                      `"GARBAGE"`,
		"GET /x HTTP/1.1 extra\r\nHost: d\r\n": `"GET /x HTTP/1.1 extra"`,
		"\x00\x01":                             `"\x00\x01"`,
		"Authorization: Bearer abc\r\n":        "(a header line, withheld)",
		"GET /\xff\xfe HTTP/1.1\r\n":           `"GET /\xff\xfe HTTP/1.1"`,
		strings.Repeat("A", 100):               `"` + strings.Repeat("A", 64) + `"…`,
		"":                                     `""`,
		"GET http://x:80/ HTTP/1.1\r\n":        `"GET http://x:80/ HTTP/1.1"`,
	} {
		if got := renderRequestLine([]byte(in)); got != want {
			t.Errorf("render(%q) = %s; want %s", in, got, want)
		}
	}
}

func FuzzRenderRequestLine(f *testing.F) {
	f.Add([]byte("GET /containers/json HTTP/1.1 extra\r\n"))
	f.Add([]byte("\x00\x01\xff\"\\\u2028"))
	f.Add([]byte("X-Auth: token\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s := renderRequestLine(b)
		if !utf8.ValidString(s) {
			t.Fatalf("not UTF-8: %q", s)
		}
		body := strings.TrimSuffix(s, "…")
		if s == "(a header line, withheld)" {
			return
		}
		if strings.ContainsAny(body, "\r\n\x00") || len(body) > 2+4*malformedCaptureBytes {
			t.Fatalf("unsafe rendering %q", s)
		}
		if strings.Contains(body, "\u2028") {
			t.Fatalf("non-ASCII left in %q", s)
		}
	})
}

// TestMiddlewareKeepsMalformedAuditing pins that wrapping the proxy in
// middleware keeps the malformed-request denial and its audit record (the
// server used to find the proxy by a type assertion on its handler).
func TestMiddlewareKeepsMalformedAuditing(t *testing.T) {
	var seen atomic.Int32
	mw := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { seen.Add(1); h.ServeHTTP(w, r) })
	}
	sock, p, audit, _ := serveForTest(t, mw)
	for _, req := range []string{"GARBAGE\r\n\r\n", "GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"} {
		c, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.WriteString(c, req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if want := map[bool]int{true: 403, false: 200}[strings.HasPrefix(req, "GARBAGE")]; resp.StatusCode != want {
			t.Errorf("%q: %d, want %d", req, resp.StatusCode, want)
		}
	}
	if recs := audit.records("malformed request"); len(recs) != 1 || p.Stats().Denied != 1 {
		t.Fatalf("records %v, stats %+v: the malformed request was not audited behind middleware", recs, p.Stats())
	}
	if seen.Load() != 1 {
		t.Errorf("middleware saw %d requests, want 1 (the valid one)", seen.Load())
	}
}
