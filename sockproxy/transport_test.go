package sockproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// testEngine is a unix-socket listener whose connections are served by
// serve, with a count of accepted connections.
type testEngine struct {
	ln    net.Listener
	dials atomic.Int32
}

func newTestEngine(t *testing.T, serve func(net.Conn)) (*testEngine, *engineTransport) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "engine.sock"))
	if err != nil {
		t.Fatal(err)
	}
	e := &testEngine{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			e.dials.Add(1)
			go serve(c)
		}
	}()
	tr := newEngineTransport(func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", ln.Addr().String())
	})
	t.Cleanup(func() { ln.Close(); tr.CloseIdleConnections() })
	return e, tr
}

// serveHTTP answers requests on c with h until the connection ends, as the
// engine's own server would (keep-alive).
func serveHTTP(h func(w *bufio.Writer, r *http.Request) (keep bool)) func(net.Conn) {
	return func(c net.Conn) {
		defer c.Close()
		br, bw := bufio.NewReader(c), bufio.NewWriter(c)
		for {
			r, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, r.Body)
			keep := h(bw, r)
			if bw.Flush() != nil || !keep {
				return
			}
		}
	}
}

func get(t *testing.T, tr http.RoundTripper, ctx context.Context, method, path string, body string) (*http.Response, error) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, "http://"+upstreamHost+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	return tr.RoundTrip(req)
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestEngineTransportReusesConnections(t *testing.T) {
	e, tr := newTestEngine(t, serveHTTP(func(w *bufio.Writer, r *http.Request) bool {
		switch r.URL.Path {
		case "/chunked":
			fmt.Fprint(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
		case "/empty":
			fmt.Fprint(w, "HTTP/1.1 204 No Content\r\n\r\n")
		default:
			fmt.Fprintf(w, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(r.URL.Path), r.URL.Path)
		}
		return true
	}))
	ctx := context.Background()
	for i, path := range []string{"/a", "/chunked", "/empty", "/bb", "/chunked"} {
		resp, err := get(t, tr, ctx, http.MethodGet, path, "")
		if err != nil {
			t.Fatalf("request %d (%s): %v", i, path, err)
		}
		got := readAll(t, resp)
		want := map[string]string{"/chunked": "abcde", "/empty": ""}[path]
		if path == "/a" || path == "/bb" {
			want = path
		}
		if got != want {
			t.Fatalf("%s: body %q, want %q", path, got, want)
		}
	}
	resp, err := get(t, tr, ctx, http.MethodPost, "/post", `{"x":1}`)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if n := e.dials.Load(); n != 1 {
		t.Fatalf("six sequential requests read to the end used %d connections, want 1", n)
	}
}

// TestEngineTransportIdleConnClosedByEngine: a connection the engine closed
// while it sat idle is noticed before use, so even a POST (never retried)
// goes through on a new connection.
func TestEngineTransportIdleConnClosedByEngine(t *testing.T) {
	closed := make(chan struct{}, 3)
	e, tr := newTestEngine(t, func(c net.Conn) {
		// One answer, then close without saying so (no "Connection: close").
		if _, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
			fmt.Fprint(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		}
		c.Close()
		closed <- struct{}{}
	})
	ctx := context.Background()
	for i, m := range []string{http.MethodGet, http.MethodPost, http.MethodPost} {
		resp, err := get(t, tr, ctx, m, "/x", "")
		if err != nil {
			t.Fatalf("request %d (%s) after the engine closed the idle connection: %v", i, m, err)
		}
		if got := readAll(t, resp); got != "ok" {
			t.Fatalf("body %q", got)
		}
		<-closed // the engine has closed the connection now idle in the pool
	}
	if n := e.dials.Load(); n != 3 {
		t.Fatalf("dials = %d, want 3", n)
	}
}

// TestEngineTransportCancelEndsStream: a client leaving a long-lived answer
// (a followed log, a wait) ends the read at once and the connection is not
// reused.
func TestEngineTransportCancelEndsStream(t *testing.T) {
	e, tr := newTestEngine(t, serveHTTP(func(w *bufio.Writer, r *http.Request) bool {
		if r.URL.Path == "/wait" {
			fmt.Fprint(w, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\n{\r\n")
			w.Flush()
			select {} // never finishes; the client's cancel must end it
		}
		fmt.Fprint(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
		return true
	}))
	ctx, cancel := context.WithCancel(context.Background())
	resp, err := get(t, tr, ctx, http.MethodPost, "/wait", "")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := resp.Body.Read(buf); n != 1 || err != nil {
		t.Fatalf("first read: %d %v", n, err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(resp.Body)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("read of a cancelled stream ended without an error")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("cancelling the request did not end the body read")
	}
	resp.Body.Close()
	resp, err = get(t, tr, context.Background(), http.MethodGet, "/next", "")
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp)
	if n := e.dials.Load(); n != 2 {
		t.Fatalf("dials = %d, want 2 (the cancelled connection must not be reused)", n)
	}
}

// TestEngineTransportUnreadBodyClosesConn: a body closed before its end
// cannot leave its connection in the pool.
func TestEngineTransportUnreadBodyClosesConn(t *testing.T) {
	e, tr := newTestEngine(t, serveHTTP(func(w *bufio.Writer, r *http.Request) bool {
		fmt.Fprint(w, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789")
		return true
	}))
	for range 2 {
		resp, err := get(t, tr, context.Background(), http.MethodGet, "/x", "")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if n := e.dials.Load(); n != 2 {
		t.Fatalf("dials = %d, want 2", n)
	}
}

// TestEngineTransportUpgrade: a 101 answer's body is the connection, both
// ways, including bytes the engine sent right after the head.
func TestEngineTransportUpgrade(t *testing.T) {
	_, tr := newTestEngine(t, func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		if _, err := http.ReadRequest(br); err != nil {
			return
		}
		fmt.Fprint(c, "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\nhello ")
		line, _ := br.ReadString('\n')
		fmt.Fprint(c, "echo:"+line)
	})
	req, _ := http.NewRequest(http.MethodPost, "http://"+upstreamHost+"/containers/x/attach", nil)
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	resp, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	rw, ok := resp.Body.(io.ReadWriteCloser)
	if !ok || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("status %d, body %T: want 101 with a read-write body", resp.StatusCode, resp.Body)
	}
	if _, err := io.WriteString(rw, "ping\n"); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rw)
	if err != nil && !errors.Is(err, net.ErrClosed) {
		t.Fatal(err)
	}
	if string(got) != "hello echo:ping\n" {
		t.Fatalf("upgraded stream read %q", got)
	}
	rw.Close()
}

// TestEngineTransportEngineGone: no engine is a prompt error, not a hang.
func TestEngineTransportEngineGone(t *testing.T) {
	tr := newEngineTransport(func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(t.TempDir(), "missing.sock"))
	})
	if _, err := get(t, tr, context.Background(), http.MethodGet, "/_ping", ""); err == nil {
		t.Fatal("a request to a missing engine socket succeeded")
	}
}
