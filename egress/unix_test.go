package egress_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/egress"
)

// A proxy served on a unix socket answers there (here: a refusal for a host
// not on the list), the socket is open to every user, and Close stops it.
func TestServeUnix(t *testing.T) {
	p, err := egress.New(egress.Config{Allow: []string{"example.org"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "egress.sock")
	srv, err := egress.ServeUnix(path, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o666 {
		t.Fatalf("socket: %v, %v; want mode 0666", st, err)
	}
	c := &http.Client{Transport: &http.Transport{
		Proxy: func(*http.Request) (*url.URL, error) { return url.Parse("http://proxy") },
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		},
	}}
	resp, err := c.Get("http://not-listed.example/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), "refused") {
		t.Fatalf("%d %s, want 403 refused", resp.StatusCode, body)
	}
	c.CloseIdleConnections()
	srv.Close(time.Second)
	if _, err := net.Dial("unix", path); err == nil {
		t.Fatal("the socket still answers after Close")
	}
}
