package sockproxytest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/sockproxy"
	"github.com/talos-ironclad/talos/sockproxy/sockproxytest"
)

func Example() {
	eng := sockproxytest.NewEngine()
	eng.Add("someone-elses", nil)
	p, _ := sockproxy.New(sockproxy.Config{Transport: sockproxytest.Transport(eng), Profile: sockproxy.MaintenanceProfile()})
	defer p.Close()

	// In a test, sockproxytest.Serve(t, p) serves p on a unix socket;
	// here the proxy is called in process.
	call := func(method, path, body string) int {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		return w.Code
	}
	fmt.Println("create:", call("POST", "/v1.41/containers/create?name=job", `{"Image":"busybox","HostConfig":{"ReadonlyRootfs":true}}`))
	fmt.Println("kill a container Talos did not create:", call("POST", "/v1.41/containers/someone-elses/kill", ""))
	for _, c := range eng.Containers() {
		fmt.Printf("%s managed=%q\n", c.Name, c.Labels[sockproxy.LabelManaged])
	}
	// Output:
	// create: 201
	// kill a container Talos did not create: 403
	// job managed="true"
	// someone-elses managed=""
}

// TestEngineBehindProxy pins the fake's answers to the calls the proxy
// forwards, end to end over the socket, and that the server is known to
// be done with each connection.
func TestEngineBehindProxy(t *testing.T) {
	eng := sockproxytest.NewEngine()
	var audit bytes.Buffer
	p, err := sockproxy.New(sockproxy.Config{Transport: sockproxytest.Transport(eng), Profile: sockproxy.MaintenanceProfile(),
		Audit: slog.New(slog.NewJSONHandler(&audit, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := sockproxytest.Serve(t, p)
	c := srv.Client()
	call := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://docker"+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := call("GET", "/_ping", ""); code != 200 || body != "OK" {
		t.Fatalf("ping: %d %q", code, body)
	}
	code, body := call("POST", "/v1.41/containers/create?name=a", `{"Image":"b","HostConfig":{"ReadonlyRootfs":true}}`)
	if code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	for _, step := range []string{"start", "stop", "kill"} {
		if code, body := call("POST", "/v1.41/containers/a/"+step, ""); code != 204 {
			t.Fatalf("%s: %d %s", step, code, body)
		}
	}
	code, body = call("GET", "/v1.41/containers/json?all=1", "")
	var list []map[string]any
	if err := json.Unmarshal([]byte(body), &list); code != 200 || err != nil || len(list) != 1 {
		t.Fatalf("list: %d %s", code, body)
	}
	if code, _ := call("DELETE", "/v1.41/containers/a", ""); code != 204 || len(eng.Containers()) != 0 {
		t.Fatalf("remove: %d, containers %v", code, eng.Containers())
	}
	if n := len(eng.Requests()); n < 6 {
		t.Fatalf("engine recorded %d requests", n)
	}
	c.CloseIdleConnections()
	srv.WaitConnsDone(t, 1)
	if srv.ConnsDone() < 1 {
		t.Fatal("no connection finished")
	}
}
