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
