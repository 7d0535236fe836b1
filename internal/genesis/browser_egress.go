package genesis

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
)

// Where the browser's egress proxy is, inside its containers.
const (
	browserEgressMount = "/run/talos-egress"
	browserEgressSock  = "egress.sock"
	browserEgressPort  = "3128" // socat on the container's loopback
	browserEgressBytes = 512 << 20
)

// browserEgress is the egress proxy every browser container sends its
// requests to: the Web allowlist's hosts on ports 80 and 443, no special
// address unless Web's AllowAddrs opens it, served on a unix socket in a
// folder bind-mounted read-only into the containers.
type browserEgress struct {
	dir  string
	srv  *http.Server
	done chan struct{}
}

func startBrowserEgress(web *Fetcher, log *slog.Logger) (*browserEgress, error) {
	const op = "genesis.NewBrowser"
	p, err := egress.New(egress.Config{Allow: web.cfg.AllowedHosts, AllowAddrs: web.cfg.AllowAddrs, DialTimeout: web.cfg.Timeout,
		MaxBytes: browserEgressBytes, MaxConns: 64, Logger: log}, nil)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "talos-browser-egress-")
	if err != nil {
		return nil, talos.E(talos.CodeSockProxy, op, "cannot create a folder for the browser's egress socket", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		_ = os.RemoveAll(dir)
		return nil, talos.E(talos.CodeSockProxy, op, "cannot open the egress folder to the browser's user", err)
	}
	sock := filepath.Join(dir, browserEgressSock)
	ln, err := net.Listen("unix", sock)
	if err == nil {
		err = os.Chmod(sock, 0o666)
	}
	if err != nil {
		if ln != nil {
			_ = ln.Close()
		}
		_ = os.RemoveAll(dir)
		return nil, talos.E(talos.CodeSockProxy, op, "cannot serve the browser's egress socket", err)
	}
	e := &browserEgress{dir: dir, srv: &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}, done: make(chan struct{})}
	go func() {
		defer close(e.done)
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Warn("browser: the egress proxy stopped", "err", err)
		}
	}()
	return e, nil
}

func (e *browserEgress) close() {
	_ = e.srv.Close()
	<-e.done
	_ = os.RemoveAll(e.dir)
}
