package health

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/internal/tlog"
)

// Every request gets a correlation ID: a valid one from the request header,
// else a fresh one; it is echoed in the response and is on the request's
// log line.
func TestRequestsCarryCorrelationID(t *testing.T) {
	var buf testenv.LockedBuffer
	log := slog.New(tlog.WithCorrelation(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	c, err := New(Config{Version: "1"}, log, Check{Name: "redis", Func: func(context.Context) (string, error) { return "ok", nil }})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics("1")
	c.AddObserver(m)
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, c, m, log)
	if err != nil {
		t.Fatal(err)
	}
	h := s.Handler()
	do := func(path, header string) string {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if header != "" {
			req.Header.Set(tlog.CorrelationHeader, header)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		id := rec.Header().Get(tlog.CorrelationHeader)
		if !tlog.ValidCorrelationID(id) {
			t.Fatalf("GET %s (header %q): response correlation ID %q is not 16 hex", path, header, id)
		}
		var found bool
		for _, l := range buf.JSONLines() {
			if l["msg"] == "http request" && l["path"] == path && l[tlog.CorrelationKey] == id {
				found = true
				if l["status"] != float64(rec.Code) {
					t.Errorf("log line status %v, response %d", l["status"], rec.Code)
				}
			}
		}
		if !found {
			t.Fatalf("no request log line for %s with correlation_id %s in:\n%v", path, id, buf.JSONLines())
		}
		return id
	}

	const given = "0123456789abcdef"
	if got := do("/health", given); got != given {
		t.Errorf("valid header %s not used: %s", given, got)
	}
	// That request started the first evaluation: its change lines carry
	// the request's ID.
	changes := 0
	for _, l := range buf.JSONLines() {
		if l["msg"] == "health status changed" || l["msg"] == "health check changed" {
			changes++
			if l[tlog.CorrelationKey] != given {
				t.Errorf("evaluation line without the requester's ID: %v", l)
			}
		}
	}
	if changes == 0 {
		t.Error("no change lines logged by the first evaluation")
	}
	a, b := do("/health", ""), do("/metrics", "")
	if a == b {
		t.Errorf("two requests share minted ID %s", a)
	}
	for _, bad := range []string{"0123456789ABCDEF", "0123456789abcde", `abc"injected`, given + "0"} {
		if got := do("/health", bad); got == bad {
			t.Errorf("invalid header %q accepted", bad)
		}
	}
	do("/ready", "")
	do("/nope", "")
}
