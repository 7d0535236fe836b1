package egress

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"
)

// maxHeaderBytes bounds a request's header on a UnixServer.
const maxHeaderBytes = 1 << 20

// UnixServer serves a Proxy on a unix socket. Close stops it.
type UnixServer struct {
	srv  *http.Server
	done chan struct{}
}

// ServeUnix serves p on a new unix socket at path. The socket gets mode
// 0666 so that a container's unprivileged user can connect: who can reach
// it is decided by the folder it is in, which is meant to be bind-mounted
// read-only into the one container it serves. A request's header must
// arrive within p's IdleTimeout and stay under 1 MiB. log (nil discards)
// gets a line if serving stops on an error.
func ServeUnix(path string, p *Proxy, log *slog.Logger) (*UnixServer, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o666); err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &UnixServer{srv: &http.Server{Handler: p, ReadHeaderTimeout: p.cfg.IdleTimeout, MaxHeaderBytes: maxHeaderBytes}, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("egress: serving stopped", "socket", path, "err", err)
		}
	}()
	return s, nil
}

// Close stops serving, cutting open tunnels, and waits up to wait (0: as
// long as it takes) for the server to stop.
func (s *UnixServer) Close(wait time.Duration) {
	_ = s.srv.Close()
	if wait <= 0 {
		<-s.done
		return
	}
	select {
	case <-s.done:
	case <-time.After(wait):
	}
}
