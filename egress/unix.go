package egress

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxHeaderBytes bounds a request's header on a UnixServer.
const maxHeaderBytes = 1 << 20

// UnixServer serves a Proxy on a unix socket. Close stops it.
type UnixServer struct {
	srv  *http.Server
	p    *Proxy
	done chan struct{}

	mu       sync.Mutex
	closing  bool
	inflight sync.WaitGroup // requests being served, tunnels included
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
	s := &UnixServer{p: p, done: make(chan struct{})}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: p.cfg.IdleTimeout, MaxHeaderBytes: maxHeaderBytes}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("egress: serving stopped", "socket", path, "err", err)
		}
	}()
	return s, nil
}

// serve counts the request in flight, so that Close can wait for its
// event, and refuses it once Close began.
func (s *UnixServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		// Refused, and reported like any refusal, so the attempt is in
		// the events.
		if s.p.cfg.Events != nil {
			host, port := r.Host, 0
			if h, p, err := net.SplitHostPort(r.Host); err == nil {
				host = h
				port, _ = strconv.Atoi(p)
			}
			s.p.cfg.Events(Event{Time: time.Now(), Method: r.Method, Host: strings.ToLower(clip(host)), Port: port, Reason: "the proxy is closing"})
		}
		http.Error(w, "the egress proxy is closing", http.StatusServiceUnavailable)
		return
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()
	s.p.ServeHTTP(w, r)
}

// Close stops serving, cutting open tunnels, and waits up to wait (0: as
// long as it takes) for the server to stop and for every request it was
// serving to end, so that the Proxy's Events callback has seen them all.
func (s *UnixServer) Close(wait time.Duration) {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	_ = s.srv.Close()
	s.p.CloseTunnels()
	ended := make(chan struct{})
	go func() {
		<-s.done
		s.inflight.Wait()
		close(ended)
	}()
	if wait <= 0 {
		<-ended
		return
	}
	select {
	case <-ended:
	case <-time.After(wait):
	}
}
