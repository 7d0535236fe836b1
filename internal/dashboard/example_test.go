package dashboard_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/talos-ironclad/talos/internal/dashboard"
)

// A dashboard behind basic auth: a request without the credentials is
// refused, one with them gets the overview's JSON.
func Example() {
	d, err := dashboard.New(dashboard.Config{User: "admin", Pass: "correct-horse-Battery-9"}, dashboard.Deps{
		Adapters: func(context.Context) ([]dashboard.Adapter, error) {
			return []dashboard.Adapter{{Role: "local-model", Name: "ollama", Detail: "http://127.0.0.1:11434"}}, nil
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := httptest.NewServer(d)
	defer srv.Close()

	resp, _ := http.Get(srv.URL + dashboard.OverviewPath)
	resp.Body.Close()
	fmt.Println("without credentials:", resp.StatusCode)

	req, _ := http.NewRequest(http.MethodGet, srv.URL+dashboard.OverviewPath, nil)
	req.SetBasicAuth("admin", "correct-horse-Battery-9")
	resp, _ = http.DefaultClient.Do(req)
	resp.Body.Close()
	fmt.Println("with credentials:", resp.StatusCode, resp.Header.Get("X-Frame-Options"))

	fmt.Println(dashboard.CheckLoopback("0.0.0.0:8080") != nil, dashboard.CheckLoopback("127.0.0.1:8080"))
	// Output:
	// without credentials: 401
	// with credentials: 200 DENY
	// true <nil>
}
