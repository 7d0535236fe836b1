package egress

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A request that reaches a closing UnixServer is refused and still
// reported, so the attempt is in the run's events.
func TestClosingServerReportsTheRefusal(t *testing.T) {
	var got []Event
	p, err := New(Config{Allow: []string{"example.org"}, Events: func(e Event) { got = append(got, e) }}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := &UnixServer{p: p, closing: true}
	w := httptest.NewRecorder()
	s.serve(w, httptest.NewRequest(http.MethodConnect, "example.org:443", nil))
	if w.Code != http.StatusServiceUnavailable {
		t.Errorf("status %d, want 503", w.Code)
	}
	if len(got) != 1 || got[0].Allowed || got[0].Host != "example.org" || got[0].Port != 443 || got[0].Method != http.MethodConnect || got[0].Reason != "the proxy is closing" {
		t.Fatalf("events %+v, want the refused CONNECT", got)
	}
}
