package egress_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/egress"
)

// serveUnix serves a Proxy of cfg on a unix socket in a temporary folder
// and returns the server and the socket's path.
func serveUnix(t *testing.T, cfg egress.Config) (*egress.UnixServer, string) {
	t.Helper()
	p, err := egress.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "egress.sock")
	srv, err := egress.ServeUnix(path, p, nil)
	if err != nil {
		t.Fatal(err)
	}
	return srv, path
}

// A proxy served on a unix socket answers there (here: a refusal for a host
// not on the list), the socket is open to every user, and Close stops it.
func TestServeUnix(t *testing.T) {
	srv, path := serveUnix(t, egress.Config{Allow: []string{"example.org"}})
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

// Close cuts an open tunnel and returns only once its handler reported
// the event: a caller reading the events after Close sees every request.
func TestServeUnixCloseWaitsForEveryEvent(t *testing.T) {
	ln := upstream(t, func(c net.Conn) { _, _ = io.Copy(io.Discard, c) }) // silent, never closes first
	var mu sync.Mutex
	var events []egress.Event
	srv, path := serveUnix(t, egress.Config{Allow: []string{ln.Addr().String()}, AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		IdleTimeout: time.Hour, Events: func(e egress.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		}})
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %[1]s\r\n\r\n", ln.Addr())
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	began := time.Now()
	srv.Close(0)
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("Close took %v with a tunnel open: it was not cut", took)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 1 || events[0].Method != http.MethodConnect || !events[0].Allowed {
		t.Fatalf("events after Close: %+v, want the tunnel's", events)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the client's tunnel is still open after Close")
	}
}
