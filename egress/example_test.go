package egress_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"

	"github.com/talos-ironclad/talos/egress"
)

// A proxy that admits one host only: a request for any other is answered
// 403 without a connection being made.
func Example() {
	p, err := egress.New(egress.Config{Allow: []string{"api.example.org"}}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	proxy, _ := url.Parse(srv.URL)
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}

	resp, err := c.Get("http://evil.example.com/upload")
	if err != nil {
		fmt.Println(err)
		return
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))
	fmt.Println(p.Allowed("api.example.org", 443), p.Allowed("api.example.org", 22))
	// Output:
	// 403 talos egress: refused: evil.example.com port 80 is not on the allowlist
	// true false
}

// Checking a URL's host and port against the same list a proxy would use:
// an entry without a port admits 80 and 443 only.
func ExampleNewAllowlist() {
	al, err := egress.NewAllowlist("hosts", []string{"*.example.org", "api.test:8443"})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(al.Allows("docs.example.org", 443), al.Allows("docs.example.org", 8080), al.Allows("api.test", 8443))
	_, err = egress.NewAllowlist("hosts", []string{"ok.example", "Bad Host"})
	fmt.Println(err)
	// Output:
	// true false true
	// hosts[1]: "Bad Host": want a lower-case host name (letters, digits, '-', '.'), *.name for its subdomains, or an IP address, optionally with :port
}
