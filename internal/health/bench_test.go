package health

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// BenchmarkHealthCached measures GET /health when the result is cached
// (the common case: the cache TTL is 1 s), with the daemon's eight checks.
func BenchmarkHealthCached(b *testing.B) {
	var checks []Check
	for _, n := range []string{"redis", "postgres", "chroma", "docker", "ollama", "home", "disk", "memory"} {
		checks = append(checks, Check{Name: n, Func: func(context.Context) (string, error) { return "embedded " + n, nil }})
	}
	c, err := New(Config{Version: "bench", CacheTTL: time.Hour}, nil, checks...)
	if err != nil {
		b.Fatal(err)
	}
	m := NewMetrics("bench")
	c.AddObserver(m)
	s, _ := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, c, m, nil)
	h := s.Handler()
	req := httptest.NewRequest(http.MethodGet, "/health", nil)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code)
		}
	}
}

// BenchmarkEvaluate measures one uncached evaluation of eight trivial
// checks (goroutine per check, timeouts, aggregation, metrics update).
func BenchmarkEvaluate(b *testing.B) {
	var checks []Check
	for _, n := range []string{"redis", "postgres", "chroma", "docker", "ollama", "home", "disk", "memory"} {
		checks = append(checks, Check{Name: n, Func: func(context.Context) (string, error) { return "ok", nil }})
	}
	c, _ := New(Config{CacheTTL: time.Nanosecond}, nil, checks...)
	c.AddObserver(NewMetrics("bench"))
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Refresh(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:8081", ":8081", "[::1]:80", "localhost:1", "0.0.0.0:1", "example.com:80", "127.0.0.1", "[::ffff:127.0.0.1]:80"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if CheckAddr(addr, false) != nil {
			return
		}
		// Accepted without permission: it must be a loopback listener.
		if !isLoopbackForTest(addr) {
			t.Fatalf("CheckAddr accepted non-loopback %q", addr)
		}
	})
}
