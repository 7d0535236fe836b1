package dashboard

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/talos-ironclad/talos"
)

// Timeouts of the dashboard's server. There is no write timeout: a chat
// answer streams for as long as its turn (the chat API bounds the turn).
const (
	ReadHeaderTimeout = 10 * time.Second
	IdleTimeout       = 2 * time.Minute
	// ShutdownGrace is how long Serve lets open requests finish once its
	// context ends.
	ShutdownGrace = 5 * time.Second
)

// CheckLoopback returns an error unless addr (host:port, WEB_BIND_ADDRESS
// and WEB_PORT) is a loopback IP address: the dashboard is for the
// operator on this machine only.
func CheckLoopback(addr string) error {
	const op = "dashboard.CheckLoopback"
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return talos.E(talos.CodeConfigInvalid, op, "dashboard address "+clip(addr)+" is not host:port", err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return talos.Errorf(talos.CodeConfigInvalid, op,
			"WEB_BIND_ADDRESS %q is not a loopback address: the dashboard only listens on this machine (use 127.0.0.1 or ::1, and an SSH tunnel to reach it from elsewhere)", clip(host))
	}
	return nil
}

// Listen opens the dashboard's listener on addr after CheckLoopback.
func Listen(ctx context.Context, addr string) (net.Listener, error) {
	if err := CheckLoopback(addr); err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, "dashboard.Listen",
			"cannot listen on "+addr+" for the dashboard (is another program using the port? change WEB_PORT)", err)
	}
	return ln, nil
}

// Serve serves d on ln until ctx ends, then shuts down within
// ShutdownGrace. It returns nil after a shutdown caused by ctx.
func (d *Dashboard) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: d, ReadHeaderTimeout: ReadHeaderTimeout, IdleTimeout: IdleTimeout,
		BaseContext: func(net.Listener) context.Context { return context.WithoutCancel(ctx) }}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	d.stopOnce.Do(func() { close(d.stop) })
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ShutdownGrace)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		_ = srv.Close() // streams still open after the grace are cut
	}
	if serr := <-done; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
