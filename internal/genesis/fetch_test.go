package genesis_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/internal/genesis"
)

func TestFetcherRefusals(t *testing.T) {
	var other *httptest.Server
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<p>hello</p>"))
		case "/big":
			w.Write([]byte(strings.Repeat("x", 5000)))
		case "/to-private":
			http.Redirect(w, r, "http://10.1.2.3/secret", http.StatusFound)
		case "/to-metadata":
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusFound)
		case "/to-other":
			http.Redirect(w, r, other.URL+"/page", http.StatusFound)
		}
	}))
	defer srv.Close()
	other = httptest.NewServer(http.NotFoundHandler())
	defer other.Close()
	loop := netip.MustParsePrefix("127.0.0.0/8")
	u, _ := url.Parse(srv.URL)
	port := u.Port()
	portN, _ := strconv.Atoi(port)

	// "localhost" resolves to loopback; it is allowed as a host name on the
	// test server's port, and the loopback range is opened only where the
	// test says so.
	f, err := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{"localhost:" + port, "10.1.2.3", "169.254.169.254"}, AllowAddrs: []netip.Prefix{loop}, MaxBytes: 1000})
	if err != nil {
		t.Fatal(err)
	}
	base := "http://localhost:" + port
	p, err := f.Fetch(t.Context(), base+"/page")
	if err != nil || string(p.Body) != "<p>hello</p>" || p.Status != 200 {
		t.Fatalf("allowed fetch: %+v %v", p, err)
	}
	p, err = f.Fetch(t.Context(), base+"/big")
	if err != nil || !p.Truncated || len(p.Body) != 1000 {
		t.Fatalf("size cap: %d %v %v", len(p.Body), p.Truncated, err)
	}
	for name, raw := range map[string]string{
		"host not on the allowlist":               srv.URL + "/page", // 127.0.0.1 is not a listed name
		"listed host on a port not listed":        "http://localhost:" + strings.TrimPrefix(other.URL, "http://127.0.0.1:") + "/page",
		"redirect to a private address":           base + "/to-private",
		"redirect to the metadata address":        base + "/to-metadata",
		"redirect to a host not on the allowlist": base + "/to-other",
		"scheme":      "file:///etc/passwd",
		"credentials": "http://user:pw@localhost:" + port + "/page",
		"allowed name, private address, not opened": "http://10.1.2.3/",
	} {
		if _, err := f.Fetch(t.Context(), raw); talos.CodeOf(err) != talos.CodePolicyDenied {
			t.Errorf("%s: %v", name, err)
		}
	}
	// Without the test's opening, loopback itself is refused.
	strict, _ := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{"localhost:" + port}})
	if _, err := strict.Fetch(t.Context(), base+"/page"); talos.CodeOf(err) != talos.CodePolicyDenied || !strings.Contains(err.Error(), "special address") {
		t.Errorf("loopback: %v", err)
	}
	if _, err := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{"Bad Host"}}); talos.CodeOf(err) != talos.CodeConfigInvalid {
		t.Errorf("bad allowlist: %v", err)
	}
	if !f.Allowed("LOCALHOST.", portN) || f.Allowed("localhost", 80) || f.Allowed("evil-localhost", portN) {
		t.Error("Allowed")
	}
	wild, _ := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{"*.example.org"}})
	if !wild.Allowed("docs.example.org", 443) || !wild.Allowed("docs.example.org", 80) || wild.Allowed("docs.example.org", 8080) ||
		wild.Allowed("example.org", 443) || wild.Allowed("badexample.org", 443) {
		t.Error("wildcard")
	}
	// Without a port in the entry, a URL naming another port is refused,
	// and the error says how to admit it.
	if _, err := wild.Fetch(t.Context(), "http://docs.example.org:8080/"); talos.CodeOf(err) != talos.CodePolicyDenied || !strings.Contains(err.Error(), "list docs.example.org:8080 to admit it") {
		t.Errorf("port not listed: %v", err)
	}
	if _, err := wild.Fetch(t.Context(), "http://[2001:db8::1]:8080/"); talos.CodeOf(err) != talos.CodePolicyDenied || !strings.Contains(err.Error(), "list [2001:db8::1]:8080 to admit it") {
		t.Errorf("IPv6 port not listed: the hint must be an entry that admits it: %v", err)
	}
	if al, err := egress.NewAllowlist("hosts", []string{"[2001:db8::1]:8080"}); err != nil || !al.Allows("2001:db8::1", 8080) {
		t.Errorf("the hinted IPv6 entry does not admit the host: %v", err)
	}
}

func TestFetcherRefusesEmbeddedIPv4(t *testing.T) {
	// Names that resolve nowhere are refused before any dial; the address
	// check itself is exercised through literal addresses on the allowlist.
	for _, addr := range []string{"[64:ff9b::a00:1]", "[2002:a00:1::1]", "[fe80::1]", "[::1]", "0.1.2.3", "100.64.0.1", "198.18.0.1"} {
		host := strings.Trim(addr, "[]")
		f, err := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{host}})
		if err != nil {
			// IPv6 literals are not host names: they cannot be allowlisted at all.
			continue
		}
		if _, err := f.Fetch(t.Context(), "http://"+addr+":80/"); talos.CodeOf(err) != talos.CodePolicyDenied {
			t.Errorf("%s: %v", addr, err)
		}
	}
}

func TestParseAllowlistAddresses(t *testing.T) {
	al, err := genesis.ParseWebAllowlist([]byte("Example.org\n*.docs.example.org\n# test web\nallow-address 172.19.0.2\nallow-address 10.0.0.0/8\nALLOW-ADDRESS fd00::/32\n"))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(al.Hosts, []string{"example.org", "*.docs.example.org"}) ||
		!slices.Equal(al.Addrs, []netip.Prefix{netip.MustParsePrefix("172.19.0.2/32"), netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/32")}) {
		t.Fatalf("parsed %+v", al)
	}
	// Nothing is opened unless listed.
	if al, err := genesis.ParseWebAllowlist([]byte("example.org\n")); err != nil || len(al.Addrs) != 0 {
		t.Fatalf("default: %+v %v", al, err)
	}
	// Every bad line at once, each named with its value escaped.
	_, err = genesis.ParseWebAllowlist([]byte("allow-address 0.0.0.0/0\nallow-address 10.1.2.3/8\nallow-address nope\nallow-address\nbad\x1bhost\nallow-addressx 1.2.3.4\nallow-address fe80::1%eth0\n-foo.example\n"))
	if talos.CodeOf(err) != talos.CodeInputInvalid {
		t.Fatalf("bad lines: %v", err)
	}
	for _, want := range []string{"line 1", "too broad", "line 2", "write 10.0.0.0/8", "line 3", "line 4", `line 5 "bad\x1bhost"`, "line 6", "line 7", "zone", `line 8 "-foo.example"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q: %v", want, err)
		}
	}
}
