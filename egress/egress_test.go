package egress_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
)

// names resolves test names to fixed addresses.
type names map[string][]netip.Addr

func (n names) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := n[host]; ok {
		return a, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
}

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

// The proxy and an Allowlist of the same entries decide alike (a
// fetcher that checks URLs itself admits exactly what the proxy does).
func TestAllowed(t *testing.T) {
	entries := []string{"example.org", "*.example.net", "api.test:8443", "192.0.2.7", "[2001:db8::1]:9000", "trailing.dot."}
	p, err := egress.New(egress.Config{Allow: entries}, nil)
	if err != nil {
		t.Fatal(err)
	}
	al, err := egress.NewAllowlist("hosts", entries)
	if err != nil || al.Len() != len(entries) {
		t.Fatalf("NewAllowlist: %d entries, %v", al.Len(), err)
	}
	for _, tc := range []struct {
		host string
		port int
		want bool
	}{
		{"example.org", 80, true}, {"example.org", 443, true}, {"EXAMPLE.org.", 443, true}, {"example.org", 8080, false},
		{"www.example.org", 443, false}, {"a.example.net", 443, true}, {"a.b.example.net", 80, true}, {"example.net", 443, false},
		{"badexample.net", 443, false}, {"api.test", 8443, true}, {"api.test", 443, false}, {"192.0.2.7", 80, true},
		{"192.0.2.8", 80, false}, {"2001:db8::1", 9000, true}, {"2001:db8::1", 443, false}, {"trailing.dot", 443, true},
		{"::ffff:192.0.2.7", 443, true},
	} {
		if got := p.Allowed(tc.host, tc.port); got != tc.want {
			t.Errorf("Allowed(%q, %d) = %t, want %t", tc.host, tc.port, got, tc.want)
		}
		if got := al.Allows(tc.host, tc.port); got != tc.want {
			t.Errorf("Allowlist.Allows(%q, %d) = %t, want %t", tc.host, tc.port, got, tc.want)
		}
	}
	if (egress.Allowlist{}).Allows("example.org", 443) {
		t.Error("the zero Allowlist admits a host")
	}
	if _, err := egress.NewAllowlist("hosts", []string{"ok.example", "a b", "x:0"}); err == nil ||
		!strings.Contains(err.Error(), "hosts[1]") || !strings.Contains(err.Error(), "hosts[2]") || strings.Contains(err.Error(), "hosts[0]") {
		t.Errorf("NewAllowlist must name every bad entry, and only those: %v", err)
	}
}

func TestNewReportsEveryBadEntry(t *testing.T) {
	_, err := egress.New(egress.Config{Allow: []string{"ok.example", "http://x", "a b", "host:0", "[::1]", "Upper.Case", "*.", "fe80::1%eth0"}, MaxConns: -1}, nil)
	if talos.CodeOf(err) != talos.CodeConfigInvalid {
		t.Fatalf("err = %v, want T001-style config error", err)
	}
	for _, want := range []string{"Allow[1]", "Allow[2]", "Allow[3]", "Allow[4]", "Allow[5]", "Allow[6]", "Allow[7]", "MaxConns -1"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "Allow[0]") {
		t.Errorf("a good entry is reported: %v", err)
	}
}

// serve starts p on loopback and returns an HTTP client that uses it.
func serve(t *testing.T, p *egress.Proxy) (*http.Client, string) {
	t.Helper()
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	tr := &http.Transport{Proxy: http.ProxyURL(u), DisableKeepAlives: true, TLSClientConfig: nil}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, u.Host
}

func web(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Proxy-Authorization") != "" || r.Header.Get("Proxy-Connection") != "" {
			http.Error(w, "proxy headers leaked", http.StatusTeapot)
			return
		}
		switch r.URL.Path {
		case "/big":
			w.Write([]byte(strings.Repeat("x", 1<<20)))
		case "/redirect":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		default:
			fmt.Fprintf(w, "page %s", r.URL.Path)
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestForwardsOnlyAllowedHostsAndAddresses(t *testing.T) {
	w := web(t)
	port := w.Listener.Addr().(*net.TCPAddr).Port
	var mu sync.Mutex
	var events []egress.Event
	cfg := egress.Config{
		Allow:      []string{fmt.Sprintf("web.test:%d", port), fmt.Sprintf("inside.test:%d", port), "169.254.169.254"},
		AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Events: func(e egress.Event) {
			mu.Lock()
			events = append(events, e)
			mu.Unlock()
		},
	}
	p, err := egress.New(cfg, names{"web.test": {netip.MustParseAddr("127.0.0.1")}, "inside.test": {netip.MustParseAddr("127.0.0.2")}})
	if err != nil {
		t.Fatal(err)
	}
	c, addr := serve(t, p)
	get := func(u string, hdr ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", u, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if st, body := get(fmt.Sprintf("http://web.test:%d/a", port), "Proxy-Authorization", "Basic c2VjcmV0"); st != 200 || body != "page /a" {
		t.Errorf("allowed host: %d %q", st, body)
	}
	for _, tc := range []struct{ url, why string }{
		{fmt.Sprintf("http://other.test:%d/", port), "not on the allowlist"},
		{"http://web.test:1/", "not on the allowlist"},
		{fmt.Sprintf("http://127.0.0.1:%d/", port), "not on the allowlist"},
		{fmt.Sprintf("http://inside.test:%d/", port), "special address"},
		{"http://169.254.169.254/latest/meta-data/", "special address"},
	} {
		st, body := get(tc.url)
		if st != http.StatusForbidden || !strings.Contains(body, tc.why) {
			t.Errorf("GET %s: %d %q, want 403 with %q", tc.url, st, body, tc.why)
		}
	}
	// Go's client never sends userinfo to a proxy; a raw request may.
	raw, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(raw, "GET http://user:pw@web.test:%d/ HTTP/1.1\r\nHost: web.test\r\n\r\n", port)
	resp, err := http.ReadResponse(bufio.NewReader(raw), nil)
	raw.Close()
	if err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("URL with credentials: %v %v, want 403", resp, err)
	}
	// A redirect is handed to the client, whose next request is checked.
	if st, _ := get(fmt.Sprintf("http://web.test:%d/redirect", port)); st != http.StatusFound {
		t.Errorf("redirect: %d, want 302 passed on", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 8 || !events[0].Allowed || events[0].Bytes == 0 || events[1].Allowed || events[1].Host != "other.test" {
		t.Errorf("events %+v", events)
	}
}

func TestTunnelsTLSEndToEnd(t *testing.T) {
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "secure") }))
	t.Cleanup(tls.Close)
	port := tls.Listener.Addr().(*net.TCPAddr).Port
	p, err := egress.New(egress.Config{Allow: []string{fmt.Sprintf("secure.test:%d", port)}, AllowAddrs: loopback},
		names{"secure.test": {netip.MustParseAddr("127.0.0.1")}})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := serve(t, p)
	tr := c.Transport.(*http.Transport)
	tr.TLSClientConfig = tls.Client().Transport.(*http.Transport).TLSClientConfig.Clone()
	tr.TLSClientConfig.ServerName = "example.com" // the test certificate's name
	resp, err := c.Get(fmt.Sprintf("https://secure.test:%d/", port))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "secure" {
		t.Errorf("body %q", b)
	}
	if _, err := c.Get(fmt.Sprintf("https://elsewhere.test:%d/", port)); err == nil || !strings.Contains(err.Error(), "Forbidden") {
		t.Errorf("CONNECT to a host not allowed: err = %v, want Forbidden", err)
	}
}

func TestByteCapStopsTheTransferAndLaterRequests(t *testing.T) {
	w := web(t)
	port := w.Listener.Addr().(*net.TCPAddr).Port
	p, err := egress.New(egress.Config{Allow: []string{fmt.Sprintf("127.0.0.1:%d", port)}, AllowAddrs: loopback, MaxBytes: 64 << 10}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := serve(t, p)
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/big", port))
	if err == nil {
		n, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if n >= 1<<20 {
			t.Fatalf("read %d bytes through a 64 KiB cap", n)
		}
	}
	if p.Used() <= 64<<10 || p.Used() > 64<<10+64<<10 {
		t.Errorf("Used = %d, want just past the cap", p.Used())
	}
	resp, err = c.Get(fmt.Sprintf("http://127.0.0.1:%d/a", port))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("after the cap: %d, want 403", resp.StatusCode)
	}
}

// upstream listens on loopback until the test ends and serves each
// connection with handle, closing it afterwards.
func upstream(t *testing.T, handle func(net.Conn)) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln
}

// connect opens a CONNECT tunnel through the proxy at addr.
func connect(t *testing.T, addr, target string) (net.Conn, *bufio.Reader, int) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	fmt.Fprintf(c, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, target)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		t.Fatal(err)
	}
	return c, br, resp.StatusCode
}

func TestIdleTunnelIsClosedAndConnectionsAreCapped(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() { // accepts and stays silent
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	p, err := egress.New(egress.Config{Allow: []string{ln.Addr().String()}, AllowAddrs: loopback, IdleTimeout: 200 * time.Millisecond, MaxConns: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, p)

	c1, br, st := connect(t, addr, ln.Addr().String())
	if st != 200 {
		t.Fatalf("CONNECT: %d", st)
	}
	_ = c1.SetReadDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
		t.Fatalf("idle tunnel: read err = %v, want EOF when the proxy closes it", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("closed after %v", d)
	}

	// Two tunnels held open: the third is refused with 503.
	p2, err := egress.New(egress.Config{Allow: []string{ln.Addr().String()}, AllowAddrs: loopback, MaxConns: 2}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr2 := serve(t, p2)
	for i := 0; i < 2; i++ {
		if _, _, st := connect(t, addr2, ln.Addr().String()); st != 200 {
			t.Fatalf("tunnel %d: %d", i, st)
		}
	}
	if _, _, st := connect(t, addr2, ln.Addr().String()); st != http.StatusServiceUnavailable {
		t.Errorf("third tunnel: %d, want 503", st)
	}
}

func TestCheckAddr(t *testing.T) {
	for _, a := range []string{"127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0",
		"::1", "fe80::1", "fc00::1", "::ffff:127.0.0.1", "64:ff9b::a00:1", "2002:a00:1::", "224.0.0.1", "255.255.255.255", "192.0.2.1"} {
		if egress.CheckAddr(netip.MustParseAddr(a), nil) == nil {
			t.Errorf("CheckAddr(%s) = nil, want refused", a)
		}
	}
	for _, a := range []string{"93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"} {
		if err := egress.CheckAddr(netip.MustParseAddr(a), nil); err != nil {
			t.Errorf("CheckAddr(%s) = %v", a, err)
		}
	}
	if err := egress.CheckAddr(netip.MustParseAddr("10.1.2.3"), []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16")}); err != nil {
		t.Errorf("allowed range: %v", err)
	}
}

func FuzzAllowlist(f *testing.F) {
	for _, s := range []string{"example.org", "*.example.org:8443", "192.0.2.1", "[::1]:80", "a..b", "*.", ":80", "x:99999", "é.example"} {
		f.Add(s, "example.org", 443)
	}
	f.Fuzz(func(t *testing.T, pattern, host string, port int) {
		p, err := egress.New(egress.Config{Allow: []string{pattern}}, nil)
		if (egress.CheckPattern(pattern) == nil) != (err == nil) {
			t.Fatalf("CheckPattern and New disagree on %q: %v", pattern, err)
		}
		if err != nil {
			if talos.CodeOf(err) != talos.CodeConfigInvalid || strings.ContainsAny(err.Error(), "\x00\x1b") {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		if p.Allowed(host, port) && port != 80 && port != 443 && !strings.HasSuffix(pattern, fmt.Sprintf(":%d", port)) {
			t.Fatalf("%q allows %q port %d", pattern, host, port)
		}
	})
}

// TestTunnelPassesHalfClose: a client that sends its request and closes
// its writing side still gets the whole answer.
func TestTunnelPassesHalfClose(t *testing.T) {
	ln := upstream(t, func(c net.Conn) {
		b, _ := io.ReadAll(c) // until the client's half-close
		time.Sleep(50 * time.Millisecond)
		fmt.Fprintf(c, "got %d bytes", len(b))
	})
	p, err := egress.New(egress.Config{Allow: []string{ln.Addr().String()}, AllowAddrs: loopback}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := serve(t, p)
	for i := 0; i < 20; i++ {
		c, br, st := connect(t, addr, ln.Addr().String())
		if st != 200 {
			t.Fatalf("CONNECT: %d", st)
		}
		c.Write([]byte("hello"))
		c.(*net.TCPConn).CloseWrite()
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		b, err := io.ReadAll(br)
		if err != nil || string(b) != "got 5 bytes" {
			t.Fatalf("try %d: %q %v", i, b, err)
		}
		c.Close()
	}
}
