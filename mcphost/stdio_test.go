package mcphost_test

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/mcphost"
)

// stdioServer is the test binary run as a stdio MCP server (see TestMain).
func stdioServer(t *testing.T, mode string) (mcphost.ServerConfig, string) {
	exe, dir := testBinary(t)
	return mcphost.ServerConfig{
		Name:      "proc",
		Command:   exe,
		AutoStart: true,
		Env:       map[string]string{"MCPHOST_TEST_SERVER": mode, "SERVER_OPTION": "from-config"},
	}, dir
}

// running reports whether pid is a live process (not gone, not a zombie).
func running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil && runtime.GOOS != "linux"
	}
	_, rest, _ := strings.Cut(string(b), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// waitGone waits (at most 5 s) for pid to stop running.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if !running(pid) {
			return
		}
	}
	t.Fatalf("process %d still runs", pid)
}

func callPID(t *testing.T, h *mcphost.Host) int {
	t.Helper()
	res, err := h.Call(context.Background(), "proc.pid", nil)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(res.Text))
	if err != nil {
		t.Fatalf("pid tool answered %q", res.Text)
	}
	return pid
}

func TestStdioServerGetsOnlyAllowlistedEnv(t *testing.T) {
	t.Setenv("TALOS_SECRET", "must-not-leak-1")
	t.Setenv("SOME_API_TOKEN", "must-not-leak-2")
	t.Setenv("UNLISTED_VAR", "must-not-leak-3")
	sc, dir := stdioServer(t, "1")
	h := startHost(t, mcphost.Config{AllowedCommands: []string{dir}, EnvAllowlist: []string{"PATH", "HOME"}, Servers: []mcphost.ServerConfig{sc}}, hostDeps{})
	res, err := h.Call(context.Background(), "proc.env", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"must-not-leak", "TALOS_SECRET", "UNLISTED_VAR"} {
		if strings.Contains(res.Text, leak) {
			t.Errorf("the server's environment contains %q:\n%s", leak, res.Text)
		}
	}
	for _, want := range []string{"PATH=", "SERVER_OPTION=from-config", "MCPHOST_TEST_SERVER=1"} {
		if !strings.Contains(res.Text, want) {
			t.Errorf("the server's environment lacks %s:\n%s", want, res.Text)
		}
	}
}

func TestStdioCrashMidCallRestartsAndStderrIsLogged(t *testing.T) {
	logs := &testenv.LockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sc, dir := stdioServer(t, "1")
	sc.MaxRetries = ptr(3)
	h := startHost(t, mcphost.Config{AllowedCommands: []string{dir}, Servers: []mcphost.ServerConfig{sc}}, hostDeps{Logger: log})
	pid1 := callPID(t, h)

	_, err := h.Call(context.Background(), "proc.crash", nil)
	wantStep(t, err, mcphost.StepCall, talos.ErrMCPServer)
	if !strings.Contains(err.Error(), "stopped during the call") {
		t.Errorf("crash message: %v", err)
	}
	if st := h.Status()[0]; st.Failures != 1 || st.Running {
		t.Fatalf("after the crash: %+v", st)
	}
	// The next call restarts the server after its backoff (1 s, real time
	// here: a real process).
	pid2 := callPID(t, h)
	if pid2 == pid1 {
		t.Fatal("no new process after the crash")
	}
	if st := h.Status()[0]; st.Failures != 0 || !st.Running {
		t.Errorf("after the restart: %+v", st)
	}
	if !strings.Contains(logs.String(), `"line":"pid tool called"`) {
		t.Errorf("the server's stderr did not reach the debug log:\n%s", logs.String())
	}
}

func TestCloseStopsStdioServers(t *testing.T) {
	for _, mode := range []string{"1", "ignore-eof"} {
		t.Run(mode, func(t *testing.T) {
			sc, dir := stdioServer(t, mode)
			h, err := newHost(mcphost.Config{AllowedCommands: []string{dir}, Servers: []mcphost.ServerConfig{sc}}, hostDeps{})
			if err != nil {
				t.Fatal(err)
			}
			if err := h.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			pid := callPID(t, h)
			if err := h.Close(); err != nil {
				t.Fatal(err)
			}
			// Close waited for the process (stdin closed, then SIGTERM,
			// then SIGKILL for one that ignores both), and reaped it.
			if running(pid) {
				t.Fatalf("server %d still runs after Close", pid)
			}
			_, err = h.Call(context.Background(), "proc.pid", nil)
			if !errors.Is(err, talos.ErrMCPServer) {
				t.Errorf("a call after Close: %v", err)
			}
		})
	}
}

func TestStdioServerThatFailsToStartGivesUp(t *testing.T) {
	sc, dir := stdioServer(t, "1")
	sc.Args = []string{"-test.run=^$"} // the test binary runs no test and exits: not an MCP server
	sc.Env = nil
	sc.MaxRetries = ptr(0)
	h, err := newHost(mcphost.Config{AllowedCommands: []string{dir}, Servers: []mcphost.ServerConfig{sc}}, hostDeps{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	err = h.Start(context.Background())
	if !errors.Is(err, talos.ErrMCPServer) || !strings.Contains(err.Error(), "starting server proc failed") {
		t.Fatalf("Start: %v", err)
	}
	if st := h.Status()[0]; !st.GaveUp {
		t.Errorf("max_retries 0 must give up after the first failure: %+v", st)
	}
}

func TestCloseKillsWhatTheServerLeftInItsGroup(t *testing.T) {
	sc, dir := stdioServer(t, "1")
	h, err := newHost(mcphost.Config{AllowedCommands: []string{dir}, Servers: []mcphost.ServerConfig{sc}}, hostDeps{})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	res, err := h.Call(context.Background(), "proc.child", nil)
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(res.Text))
	if err != nil || !running(child) {
		t.Fatalf("child %q not running: %v", res.Text, err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, child)
}

func TestServerThatFailedDiscoveryIsRetriedAtItsFirstCall(t *testing.T) {
	sc, dir := stdioServer(t, "fail-once:"+filepath.Join(t.TempDir(), "started"))
	sc.AutoStart = false
	h, err := newHost(mcphost.Config{AllowedCommands: []string{dir}, Servers: []mcphost.ServerConfig{sc}}, hostDeps{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := h.Start(context.Background()); !errors.Is(err, talos.ErrMCPServer) {
		t.Fatalf("the first start should fail: %v", err)
	}
	if len(h.Catalog().Tools) != 0 {
		t.Fatal("tools of a server that never answered")
	}
	// The first call discovers the tools (after the 1 s backoff) and runs.
	if pid := callPID(t, h); pid <= 0 {
		t.Fatal("no pid")
	}
	if len(h.Catalog().Tools) == 0 {
		t.Error("the catalog did not learn the late server's tools")
	}
}
