package testenv

import (
	"net"
	"testing"
)

// RefusingURL returns an http URL on 127.0.0.1 where nothing listens: a
// port the kernel just handed out and this process closed again. Tests
// use it for "no service answers there" instead of a well-known port (such
// as Ollama's 11434), which the machine running them may well serve.
func RefusingURL(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("testenv: reserving a local port: %v", err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		tb.Fatalf("testenv: closing %s: %v", addr, err)
	}
	return "http://" + addr
}
