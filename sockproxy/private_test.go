package sockproxy_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"

	"github.com/talos-ironclad/talos/sockproxy"
)

// A private proxy listens in a folder only this user can enter, and Close
// removes the folder.
func TestServePrivate(t *testing.T) {
	p, err := sockproxy.ServePrivate(sockproxy.Config{Upstream: "unix:///nonexistent/docker.sock"}, "talos-test-private-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p.Socket())
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("folder %v %v, want mode 0700", st, err)
	}
	c, err := net.Dial("unix", p.Socket())
	if err != nil {
		t.Fatalf("the socket does not answer: %v", err)
	}
	c.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the folder is still there after Close: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
