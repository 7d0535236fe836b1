package genesis

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

// Where a browser container finds its egress proxy: the sandbox's mount
// point and loopback address, so both kinds of container look alike.
const (
	browserEgressMount = sandbox.EgressMount
	browserEgressSock  = "egress.sock"
	browserEgressBytes = 512 << 20 // per session: one container's life
)

// browserEgressPort is the port of sandbox.EgressProxyAddr, where socat
// relays the socket on the container's loopback.
var browserEgressPort = func() string {
	_, port, _ := strings.Cut(sandbox.EgressProxyAddr, ":")
	return port
}()

// browserEgress is one session's egress proxy: the Web allowlist's hosts
// on the ports it admits (80 and 443 unless an entry names one), no special address unless Web's AllowAddrs opens
// it, its own byte cap, served on a unix socket in its own folder under
// the browser's egress root, bind-mounted read-only into that session's
// container only. It lives as long as the container.
type browserEgress struct {
	dir string
	srv *egress.UnixServer
}

// browserEgressConfig is the proxy configuration of every session.
func browserEgressConfig(web *Fetcher, log *slog.Logger) egress.Config {
	return egress.Config{Allow: web.cfg.AllowedHosts, AllowAddrs: web.cfg.AllowAddrs, DialTimeout: web.cfg.Timeout,
		MaxBytes: browserEgressBytes, MaxConns: 64, Logger: log}
}

// startBrowserEgress serves a fresh proxy of cfg in a new folder under root.
func startBrowserEgress(cfg egress.Config, root string, log *slog.Logger) (*browserEgress, error) {
	const op = "genesis.Browser.spawn"
	p, err := egress.New(cfg, nil)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(root, "session-")
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, talos.E(talos.CodeSockProxy, op, "cannot create the folder for the browser's egress socket", err)
	}
	srv, err := egress.ServeUnix(filepath.Join(dir, browserEgressSock), p, log)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, talos.E(talos.CodeSockProxy, op, "cannot serve the browser's egress socket", err)
	}
	return &browserEgress{dir: dir, srv: srv}, nil
}

func (e *browserEgress) close() {
	e.srv.Close(0)
	_ = os.RemoveAll(e.dir)
}
