package sockproxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// engineTransport is the proxy's HTTP/1.1 client for the engine's socket. It
// does a whole exchange — write the request, read the response head, read the
// body — on the calling goroutine, over a pool of kept-alive connections.
//
// Why not net/http's Transport: it hands every request to a writer goroutine
// and every response through a reader goroutine. On the two-core machines
// Talos targets, those two extra wake-ups per request were most of the
// latency the proxy added to a container list (the budget is +200 µs at
// the median); this transport removes them. It speaks only what the Docker engine
// speaks on its socket: plain HTTP/1.1, fixed-length or chunked bodies,
// bodies that end with the connection, and 101 upgrades (attach), whose
// response body is the connection itself as net/http's is, so
// httputil.ReverseProxy can splice it.
type engineTransport struct {
	dial        func(ctx context.Context) (net.Conn, error)
	maxIdle     int
	idleTimeout time.Duration

	mu     sync.Mutex
	idle   []*engineConn // most recently used last
	closed bool
}

// engineConn is one connection to the engine with its buffers.
type engineConn struct {
	conn      net.Conn
	br        *bufio.Reader
	bw        *bufio.Writer
	idleSince time.Time
}

func newEngineTransport(dial func(ctx context.Context) (net.Conn, error)) *engineTransport {
	return &engineTransport{dial: dial, maxIdle: 64, idleTimeout: 90 * time.Second}
}

// RoundTrip sends req to the engine and returns its response. A GET or HEAD
// without a body that fails on a reused connection (the engine closed it
// while idle) is retried once on a new one; other requests are not sent
// twice.
func (t *engineTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	for attempt := 0; ; attempt++ {
		c, reused, err := t.get(ctx)
		if err != nil {
			return nil, err
		}
		resp, err := t.exchange(ctx, c, req)
		if err == nil {
			return resp, nil
		}
		c.conn.Close()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if !reused || attempt > 0 || !replayable(req) {
			return nil, err
		}
	}
}

// replayable reports whether req may be sent again after a failed attempt.
func replayable(req *http.Request) bool {
	return (req.Method == http.MethodGet || req.Method == http.MethodHead) &&
		(req.Body == nil || req.Body == http.NoBody)
}

// exchange writes req on c and reads the response head. The request's
// context closes the connection when it ends first, which unblocks any read
// or write on it (a client that leaves a followed log or a wait).
func (t *engineTransport) exchange(ctx context.Context, c *engineConn, req *http.Request) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { c.conn.Close() })
	if err := req.Write(c.bw); err != nil {
		stop()
		return nil, err
	}
	if err := c.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	var resp *http.Response
	for {
		var err error
		resp, err = http.ReadResponse(c.br, req)
		if err != nil {
			stop()
			return nil, err
		}
		// 1xx answers other than 101 are interim: the real one follows.
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != http.StatusSwitchingProtocols {
			continue
		}
		break
	}
	if resp.StatusCode == http.StatusSwitchingProtocols {
		resp.Body = &upgradedConn{c: c, stop: stop}
		return resp, nil
	}
	b := &engineBody{rc: resp.Body, c: c, t: t, stop: stop, keep: !resp.Close && !req.Close}
	if resp.Body == http.NoBody { // 204, 304, HEAD: the exchange is over
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// get returns an idle connection that is still open, or dials a new one.
func (t *engineTransport) get(ctx context.Context) (c *engineConn, reused bool, err error) {
	now := time.Now()
	t.mu.Lock()
	for len(t.idle) > 0 {
		c = t.idle[len(t.idle)-1]
		t.idle = t.idle[:len(t.idle)-1]
		if now.Sub(c.idleSince) < t.idleTimeout {
			break
		}
		c.conn.Close()
		c = nil
	}
	t.mu.Unlock()
	if c != nil {
		if idleConnOpen(c.conn) {
			return c, true, nil
		}
		c.conn.Close()
	}
	conn, err := t.dial(ctx)
	if err != nil {
		return nil, false, err
	}
	return &engineConn{conn: conn, br: bufio.NewReaderSize(conn, 16<<10), bw: bufio.NewWriterSize(conn, 4<<10)}, false, nil
}

// put returns c to the idle pool, or closes it when the pool is full or the
// transport is closed.
func (t *engineTransport) put(c *engineConn) {
	c.idleSince = time.Now()
	t.mu.Lock()
	if t.closed || len(t.idle) >= t.maxIdle {
		t.mu.Unlock()
		c.conn.Close()
		return
	}
	t.idle = append(t.idle, c)
	t.mu.Unlock()
}

// CloseIdleConnections closes every idle connection; connections in use
// close when their exchange ends.
func (t *engineTransport) CloseIdleConnections() {
	t.mu.Lock()
	idle := t.idle
	t.idle = nil
	t.mu.Unlock()
	for _, c := range idle {
		c.conn.Close()
	}
}

// idleConnOpen reports whether an idle connection is still usable: the
// engine has neither closed it nor sent anything unasked. It peeks without
// blocking, so a connection the engine dropped while idle is never used.
func idleConnOpen(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return true
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	open := false
	var b [1]byte
	err = raw.Read(func(fd uintptr) bool {
		n, _, rerr := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		open = n < 0 && (errors.Is(rerr, syscall.EAGAIN) || errors.Is(rerr, syscall.EWOULDBLOCK))
		return true // never wait for readability
	})
	return err == nil && open
}

// engineBody is a response body that gives its connection back to the pool
// when it has been read to the end, and closes it otherwise.
type engineBody struct {
	rc   io.ReadCloser
	c    *engineConn
	t    *engineTransport
	stop func() bool
	keep bool

	mu   sync.Mutex
	done bool
}

func (b *engineBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

// Close ends the exchange; a body not read to the end leaves its connection
// in an unknown state, so the connection is closed.
func (b *engineBody) Close() error {
	b.finish(false)
	return nil
}

func (b *engineBody) finish(atEOF bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	// stop reports false when the context already closed the connection.
	if b.stop() && atEOF && b.keep && b.c.br.Buffered() == 0 {
		b.t.put(b.c)
		return
	}
	b.c.conn.Close()
}

// upgradedConn is the body of a 101 response: the raw connection, read
// through the buffer that may already hold the first bytes after the head.
type upgradedConn struct {
	c    *engineConn
	stop func() bool
}

func (u *upgradedConn) Read(p []byte) (int, error)  { return u.c.br.Read(p) }
func (u *upgradedConn) Write(p []byte) (int, error) { return u.c.conn.Write(p) }

// Close closes the connection; an upgraded connection is never reused.
func (u *upgradedConn) Close() error {
	u.stop()
	return u.c.conn.Close()
}

// CloseWrite half-closes the connection when the engine's socket supports
// it, so a client's end of stdin reaches the container.
func (u *upgradedConn) CloseWrite() error {
	if cw, ok := u.c.conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
