package svcchecktest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
)

// Redis is a private redis-server child process on a loopback port.
type Redis struct {
	tb   testing.TB
	bin  string
	dir  string
	Port int
	// Args are extra redis-server arguments used by the next Start (for
	// example "--maxmemory-policy", "allkeys-lru").
	Args []string
	cmd  *exec.Cmd
}

// StartRedis starts redis-server from PATH on a free loopback port, with
// no persistence, in a temporary folder, and stops it when the test ends.
// Without a redis-server binary the test is skipped (or fails when
// TALOS_TEST_REQUIRE_SERVICES=1).
func StartRedis(tb testing.TB) *Redis {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not on PATH (apt-get install redis-server)"
		if testenv.Required() {
			tb.Fatal(msg)
		}
		tb.Skip(msg)
	}
	r := &Redis{tb: tb, bin: bin, dir: tb.TempDir(), Port: FreePort(tb)}
	r.Start()
	tb.Cleanup(r.Stop)
	return r
}

// URL is redis://127.0.0.1:PORT/0.
func (r *Redis) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", r.Port) }

// Addr is 127.0.0.1:PORT.
func (r *Redis) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.Port)) }

// Start (re)starts the server on the same port and waits until it accepts
// connections.
func (r *Redis) Start() {
	r.tb.Helper()
	if r.cmd != nil {
		return
	}
	args := []string{"--port", strconv.Itoa(r.Port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.dir, "--logfile", filepath.Join(r.dir, "redis.log")}
	cmd := exec.Command(r.bin, append(args, r.Args...)...)
	if err := cmd.Start(); err != nil {
		r.tb.Fatalf("start redis-server: %v", err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", r.Addr(), 100*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
	r.Stop()
	r.tb.Fatalf("redis-server on %s not ready after 5 s; log:\n%s", r.Addr(), log)
}

// Stop kills the server (only this child, by its PID) and waits for it.
func (r *Redis) Stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Kill()
	_ = r.cmd.Wait()
	r.cmd = nil
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort(tb testing.TB) int {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
