package mcphost

import (
	"errors"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/server"
)

// A client that is no longer the server's current one (disconnected on
// purpose, or dropped after a failure already counted) fails without
// counting a failure: no backoff, no step towards giving up.
func TestFailureOfAReplacedClientIsNotCounted(t *testing.T) {
	srvr := server.NewMCPServer("fs", "1")
	h, err := New(Config{Servers: []ServerConfig{{Name: "fs", InProcess: srvr}}}, nil, nil, nil, Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	s := h.byName["fs"]
	stale, err := client.NewInProcessClient(srvr)
	if err != nil {
		t.Fatal(err)
	}
	current, err := client.NewInProcessClient(srvr)
	if err != nil {
		t.Fatal(err)
	}
	for _, now := range []*client.Client{nil, current} {
		s.mu.Lock()
		s.client = now
		s.mu.Unlock()
		h.failed(s, stale, errors.New("transport closed"))
		s.mu.Lock()
		failures, retry, client := s.failures, s.retryAt, s.client
		s.mu.Unlock()
		if failures != 0 || !retry.IsZero() || client != now {
			t.Fatalf("current client %v: a stale client's failure counted (failures %d, retry at %v, client %v)", now, failures, retry, client)
		}
	}
	h.failed(s, current, errors.New("timeout"))
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures != 1 || s.client != nil || s.retryAt.IsZero() {
		t.Fatalf("the current client's failure: failures %d, client %v, retry at %v", s.failures, s.client, s.retryAt)
	}
}
