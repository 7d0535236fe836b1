package sockproxy_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/talos-ironclad/talos/sockproxy"
)

// engineStub stands in for the Docker engine in the example.
type engineStub struct{}

func (engineStub) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: 201, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"Id":"0123","Warnings":[]}`)), Request: r}, nil
}

// A privileged create is refused with a Docker-style 403; a safe one is
// forwarded (with the Talos label added).
func ExampleNew() {
	p, err := sockproxy.New(sockproxy.Config{
		Profile:   sockproxy.SkillsProfile(),
		Transport: engineStub{}, // normally Upstream: "unix:///var/run/docker.sock"
	})
	if err != nil {
		panic(err)
	}
	send := func(body string) {
		r := httptest.NewRequest("POST", "/v1.41/containers/create", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	send(`{"Image":"busybox","HostConfig":{"ReadonlyRootfs":true,"Privileged":true}}`)
	send(`{"Image":"busybox","HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"none"}}`)
	// Output:
	// 403 {"message":"sockproxy: denied: HostConfig.Privileged: privileged containers are not allowed"}
	// 201 {"Id":"0123","Warnings":[]}
}
