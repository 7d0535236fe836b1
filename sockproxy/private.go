package sockproxy

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	"github.com/talos-ironclad/talos"
)

// Private is a Proxy served on a unix socket in a private temporary folder,
// for this process's own Docker client: a sandbox, or one of the agent's
// tools, talks to the engine only through its own profile this way.
type Private struct {
	proxy  *Proxy
	sock   string
	cancel context.CancelFunc
	served chan error
	once   sync.Once
	err    error
}

// ServePrivate creates a Proxy of cfg and serves it on a unix socket in a
// new folder of the system's temporary directory, named prefix followed by
// a random suffix and readable by this user only. Close stops it and
// removes the folder.
func ServePrivate(cfg Config, prefix string) (*Private, error) {
	const op = "sockproxy.ServePrivate"
	proxy, err := New(cfg)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		_ = proxy.Close()
		return nil, talos.E(talos.CodeSockProxy, op, "cannot create a private folder for the proxy's socket", err)
	}
	sock := filepath.Join(dir, "docker.sock")
	ln, err := Listen("unix://"+sock, ListenOptions{})
	if err != nil {
		_ = proxy.Close()
		_ = os.RemoveAll(dir)
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Private{proxy: proxy, sock: sock, cancel: cancel, served: make(chan error, 1)}
	go func() {
		err := Serve(ctx, ln, NewServer(proxy))
		_ = os.RemoveAll(dir)
		p.served <- err
	}()
	return p, nil
}

// Socket returns the socket's path; a Docker client reaches the engine
// through it at "unix://" + Socket().
func (p *Private) Socket() string { return p.sock }

// Close stops serving, removes the folder and closes the proxy; it returns
// what serving ended with. Later calls return the same.
func (p *Private) Close() error {
	p.once.Do(func() {
		p.cancel()
		p.err = <-p.served
		_ = p.proxy.Close()
	})
	return p.err
}
