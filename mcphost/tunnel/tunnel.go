package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/mark3labs/mcp-go/server"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost/gateway"
)

// HandshakeTimeout bounds a TLS handshake on either side.
const HandshakeTimeout = 10 * time.Second

// Serve accepts connections on ln from the authorized peer only and serves
// srv to each, one connection at a time (mcp-go's stdio session is one per
// process), until ctx ends. A refused handshake is logged and the next
// connection accepted. It closes ln when it returns.
func Serve(ctx context.Context, ln net.Listener, id *gateway.Identity, authorized gateway.PeerID, srv *server.MCPServer, log *slog.Logger) error {
	return ServeWith(ctx, ln, id, authorized, srv, Options{Log: log})
}

// Options are ServeWith's optional settings.
type Options struct {
	// Verifier, if set, requires every connection to open with a hello
	// frame: a request for ConnectAction signed by the authorized peer
	// with a valid capability token of a root Verifier trusts and a fresh
	// nonce. An expired, revoked or foreign token and a replayed request
	// are refused before any MCP message is read. Nil admits the
	// authorized peer by its pinned key alone.
	Verifier *gateway.Verifier
	// RateLimit is each connection's token bucket for tools/call when a
	// Verifier is set; the zero value is unlimited. A gateway.Server as
	// the served srv also refuses (and does not list) the tools the
	// connection's token does not grant (gateway.ToolAction).
	RateLimit gateway.RateLimit
	// Log receives connection events (nil discards them).
	Log *slog.Logger
}

// ServeWith is Serve with Options.
func ServeWith(ctx context.Context, ln net.Listener, id *gateway.Identity, authorized gateway.PeerID, srv *server.MCPServer, opts Options) error {
	const op = "tunnel.Serve"
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := gateway.PinnedTLS(id, authorized)
	if err != nil {
		return talos.E(talos.CodeConfigInvalid, op, "the authorized peer ID is invalid", err)
	}
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		raw, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return talos.E(talos.CodeMCPServer, op, "accepting a tunnel connection failed", err)
		}
		conn := tls.Server(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
		err = conn.HandshakeContext(hctx)
		cancel()
		if err != nil {
			log.Warn("tunnel: handshake refused", "remote", raw.RemoteAddr().String(), "err", err)
			raw.Close()
			continue
		}
		var in io.Reader = conn
		sctx := ctx
		if opts.Verifier != nil {
			br, token, err := admit(conn, opts.Verifier, authorized)
			if err != nil {
				log.Warn("tunnel: hello refused", "peer", string(authorized), "remote", raw.RemoteAddr().String(), "err", err)
				conn.Close()
				continue
			}
			in = br
			sctx = gateway.WithCaller(ctx, opts.Verifier.NewSession(opts.RateLimit), token)
		}
		log.Info("tunnel: peer connected", "peer", string(authorized), "remote", raw.RemoteAddr().String())
		serveConn(sctx, conn, in, srv)
		log.Info("tunnel: peer disconnected", "peer", string(authorized))
	}
}

// serveConn serves srv on one authenticated connection until it closes or
// ctx ends.
func serveConn(ctx context.Context, conn *tls.Conn, in io.Reader, srv *server.MCPServer) {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(cctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	_ = server.NewStdioServer(srv).Listen(cctx, in, conn)
}

// Dial connects to the peer at addr and checks that it holds the key of
// want; the peer checks ours in turn.
func Dial(ctx context.Context, addr string, id *gateway.Identity, want gateway.PeerID) (*tls.Conn, error) {
	const op = "tunnel.Dial"
	cfg, err := gateway.PinnedTLS(id, want)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "the peer ID is invalid", err)
	}
	d := tls.Dialer{NetDialer: &net.Dialer{Timeout: HandshakeTimeout}, Config: cfg}
	hctx, cancel := context.WithTimeout(ctx, HandshakeTimeout)
	defer cancel()
	c, err := d.DialContext(hctx, "tcp", addr)
	if err != nil {
		return nil, talos.E(talos.CodeUnauthorized, op, "the tunnel to "+addr+" was not established (wrong peer, refused key, or unreachable)", err)
	}
	return c.(*tls.Conn), nil
}

// DialWith is Dial followed by the hello a server with a Verifier requires:
// a request for ConnectAction with token, signed by id. An empty token
// sends no hello.
func DialWith(ctx context.Context, addr string, id *gateway.Identity, want gateway.PeerID, token string) (*tls.Conn, error) {
	conn, err := Dial(ctx, addr, id, want)
	if err != nil || token == "" {
		return conn, err
	}
	if err := hello(ctx, conn, id, token); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// Bridge copies in (a desktop client's stdin) to conn and conn to out
// until the peer ends the connection, in ends, or ctx ends; then it closes
// conn. (The goroutine reading in returns at in's next read.)
func Bridge(ctx context.Context, conn net.Conn, in io.Reader, out io.Writer) error {
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()
	go func() {
		_, _ = io.Copy(conn, in)
		if cw, ok := conn.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite() // the served side sees EOF and ends the session
		}
	}()
	_, err := io.Copy(out, conn)
	if ctx.Err() != nil || err == nil || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) {
		return nil
	}
	return talos.E(talos.CodeMCPServer, "tunnel.Bridge", "the tunnel broke", err)
}
