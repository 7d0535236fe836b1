package sockproxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos"
)

// SocketMode is the mode of a unix socket the proxy listens on: owner and
// group may connect, nobody else.
const SocketMode os.FileMode = 0o660

// ShutdownGrace is how long Serve lets in-flight requests finish after its
// context is cancelled before closing the remaining (streaming) connections.
const ShutdownGrace = 5 * time.Second

// ListenOptions tune Listen.
type ListenOptions struct {
	// AllowNonLoopback lets a tcp:// address bind to a non-loopback
	// interface. Off by default: anyone who can reach the port can drive the
	// engine within the profile.
	AllowNonLoopback bool

	// Group, when > 0, is the group ID given to a unix socket (so members of
	// that group may connect).
	Group int
}

// Listen opens the listener for addr: "unix:///run/talos/docker.sock" (a
// socket with mode 0660, created under a temporary name and renamed into
// place so it is never reachable with looser permissions; a missing
// directory is created with mode 0750; a stale socket nobody answers on is
// replaced) or "tcp://127.0.0.1:2375" (loopback only
// unless opts.AllowNonLoopback).
func Listen(addr string, opts ListenOptions) (net.Listener, error) {
	const op = "sockproxy.Listen"
	u, err := url.Parse(addr)
	if err != nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "listen address %q is not a URL: %v; use unix:///path or tcp://127.0.0.1:2375", addr, err)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			break
		}
		return listenUnix(u.Path, opts)
	case "tcp":
		host, _, err := net.SplitHostPort(u.Host)
		if err != nil {
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "listen address %q: %v; use tcp://127.0.0.1:PORT", addr, err)
		}
		ip := net.ParseIP(host)
		if host == "localhost" {
			ip = net.IPv4(127, 0, 0, 1)
			u.Host = net.JoinHostPort("127.0.0.1", u.Port())
		}
		if !opts.AllowNonLoopback && (ip == nil || !ip.IsLoopback()) {
			return nil, talos.Errorf(talos.CodeConfigInvalid, op,
				"listen address %q is not a loopback address: the Docker API must not be reachable from the network; use 127.0.0.1 or allow it explicitly", addr)
		}
		ln, err := net.Listen("tcp", u.Host)
		if err != nil {
			return nil, talos.E(talos.CodeSockProxy, op, "cannot listen on "+addr, err)
		}
		return ln, nil
	}
	return nil, talos.Errorf(talos.CodeConfigInvalid, op, "listen address %q is not supported: use unix:///path or tcp://127.0.0.1:PORT", addr)
}

// unixListener removes its socket file on Close.
type unixListener struct {
	*net.UnixListener
	path string
}

func (l *unixListener) Close() error {
	err := l.UnixListener.Close()
	if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

func listenUnix(path string, opts ListenOptions) (net.Listener, error) {
	const op = "sockproxy.Listen"
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, talos.E(talos.CodeSockProxy, op, "cannot create the socket's directory "+filepath.Dir(path), err)
	}
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, talos.Errorf(talos.CodeConfigInvalid, op, "%s exists and is not a socket; remove it or choose another path", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			_ = c.Close()
			return nil, talos.Errorf(talos.CodeSockProxy, op, "%s is in use by another process; stop it or choose another path", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, talos.E(talos.CodeSockProxy, op, "cannot remove the stale socket "+path, err)
		}
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp"+strconv.Itoa(os.Getpid()))
	_ = os.Remove(tmp)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return nil, talos.E(talos.CodeSockProxy, op, "cannot listen on "+path, err)
	}
	ln.SetUnlinkOnClose(false)
	fail := func(what string, err error) (net.Listener, error) {
		_ = ln.Close()
		_ = os.Remove(tmp)
		return nil, talos.E(talos.CodeSockProxy, op, what, err)
	}
	if err := os.Chmod(tmp, SocketMode); err != nil {
		return fail("cannot set the socket's mode", err)
	}
	if opts.Group > 0 {
		if err := os.Chown(tmp, -1, opts.Group); err != nil {
			return fail(fmt.Sprintf("cannot give the socket to group %d", opts.Group), err)
		}
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail("cannot move the socket into place at "+path, err)
	}
	return &unixListener{UnixListener: ln, path: path}, nil
}

// clientInfo identifies the peer of a connection.
type clientInfo struct {
	key  string // rate-limit key: "uid:1000" on unix sockets, the IP on TCP
	desc string // for audit records: key plus pid where known
}

type clientKey struct{}

// peerInfo derives the client identity of a connection.
func peerInfo(c net.Conn) clientInfo {
	if uc, ok := c.(*net.UnixConn); ok {
		if raw, err := uc.SyscallConn(); err == nil {
			var cred *syscall.Ucred
			var cerr error
			_ = raw.Control(func(fd uintptr) {
				cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
			})
			if cerr == nil && cred != nil {
				k := "uid:" + strconv.FormatUint(uint64(cred.Uid), 10)
				return clientInfo{key: k, desc: k + " pid:" + strconv.FormatInt(int64(cred.Pid), 10)}
			}
		}
		return clientInfo{key: "unix", desc: "unix"}
	}
	if host, _, err := net.SplitHostPort(c.RemoteAddr().String()); err == nil {
		return clientInfo{key: host, desc: c.RemoteAddr().String()}
	}
	return clientInfo{key: c.RemoteAddr().String(), desc: c.RemoteAddr().String()}
}

// clientOf returns the client identity stored by NewServer's ConnContext,
// or one derived from RemoteAddr.
func clientOf(r *http.Request) clientInfo {
	if ci, ok := r.Context().Value(clientKey{}).(clientInfo); ok {
		return ci
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || host == "" {
		host = r.RemoteAddr
	}
	if host == "" || host == "@" {
		host = "unix"
	}
	return clientInfo{key: host, desc: r.RemoteAddr}
}

// NewServer returns an http.Server for p that records each connection's
// peer (uid and pid on unix sockets, via SO_PEERCRED) for rate limiting and
// audit. It sets a header read timeout and no write timeout, so long-lived
// streams (logs follow, wait, attach) are not cut.
//
// Requests reach p through middleware, if any: middleware[0] is the
// outermost. Whatever the middleware, a request net/http cannot parse and
// would answer itself (400, 431, 501, 505) is answered with the proxy's 403
// and audited in p's audit log as a "malformed request" denial (package doc,
// "Malformed requests"), when the server runs under Serve, which wraps the
// listener so the record carries the first line of what was read (quoted,
// at most 64 bytes). "OPTIONS *" is passed to the proxy (which denies it)
// instead of being answered by net/http. p must not be nil.
//
// The returned server's ConnState may be wrapped (call the original first)
// to observe connections, as tests do to know a connection was handled.
func NewServer(p *Proxy, middleware ...func(http.Handler) http.Handler) *http.Server {
	a := &connAuditor{audit: p.audit, profile: p.profile.Name, denied: func() { p.nDenied.Add(1) }}
	var h http.Handler = p
	for i := len(middleware) - 1; i >= 0; i-- {
		h = middleware[i](h)
	}
	return &http.Server{
		Handler:                      a.handler(h),
		ReadHeaderTimeout:            10 * time.Second,
		IdleTimeout:                  120 * time.Second,
		MaxHeaderBytes:               64 << 10,
		DisableGeneralOptionsHandler: true,
		ConnContext:                  a.connContext,
		ConnState:                    a.connState,
	}
}

// Serve serves srv (from NewServer) on ln until ctx is cancelled, then
// shuts down: new connections stop at once, in-flight requests get
// ShutdownGrace. It returns nil after a clean shutdown.
func Serve(ctx context.Context, ln net.Listener, srv *http.Server) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(capListener{ln}) }()
	select {
	case err := <-errc:
		return talos.E(talos.CodeSockProxy, "sockproxy.Serve", "the proxy stopped serving", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc
	return nil
}
