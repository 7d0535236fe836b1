package mcphost_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/mcphosttest"
)

// TestMain lets the test binary serve as a stdio MCP server: with
// MCPHOST_TEST_SERVER set it serves the hostile/test tools below on
// stdin/stdout instead of running tests.
func TestMain(m *testing.M) {
	if mode := os.Getenv("MCPHOST_TEST_SERVER"); mode != "" {
		serveStdio(mode)
		return
	}
	os.Exit(m.Run())
}

func serveStdio(mode string) {
	if marker, ok := strings.CutPrefix(mode, "fail-once:"); ok {
		// Fails its first start (no MCP at all), serves from then on.
		if _, err := os.Stat(marker); err != nil {
			_ = os.WriteFile(marker, nil, 0o600)
			os.Exit(1)
		}
	}
	s := server.NewMCPServer("test-stdio", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("env", mcp.WithDescription("Print the environment")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			env := os.Environ()
			sort.Strings(env)
			return mcp.NewToolResultText(strings.Join(env, "\n")), nil
		})
	s.AddTool(mcp.NewTool("crash", mcp.WithDescription("Exit mid-call")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			os.Exit(3)
			return nil, nil
		})
	s.AddTool(mcp.NewTool("pid", mcp.WithDescription("Print the process id")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			fmt.Fprintln(os.Stderr, "pid tool called")
			return mcp.NewToolResultText(fmt.Sprint(os.Getpid())), nil
		})
	s.AddTool(mcp.NewTool("child", mcp.WithDescription("Start a long-running child process")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			cmd := exec.Command("/bin/sleep", "1000")
			if err := cmd.Start(); err != nil {
				return nil, err
			}
			return mcp.NewToolResultText(fmt.Sprint(cmd.Process.Pid)), nil
		})
	if mode == "ignore-eof" {
		// A server that does not exit when its stdin closes.
		_ = server.ServeStdio(s)
		select {}
	}
	_ = server.ServeStdio(s)
}

// testBinary returns the test binary's path and its directory, for
// AllowedCommands.
func testBinary(t *testing.T) (string, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(exe)
	if err != nil {
		t.Fatal(err)
	}
	return real, filepath.Dir(real)
}

func textTool(name, desc, answer string) server.ServerTool {
	return server.ServerTool{
		Tool: mcp.NewTool(name, mcp.WithDescription(desc), mcp.WithString("path", mcp.Required(), mcp.Description("a path"))),
		Handler: func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(answer), nil
		},
	}
}

func newServer(tools ...server.ServerTool) *server.MCPServer {
	s := server.NewMCPServer("test", "1", server.WithToolCapabilities(true))
	s.AddTools(tools...)
	return s
}

func inproc(name string, s *server.MCPServer) mcphost.ServerConfig {
	return mcphost.ServerConfig{Name: name, InProcess: s, AutoStart: true}
}

// hostDeps gathers the collaborators a test hands to mcphost.New, and a
// logger for its Config.
type hostDeps struct {
	Logger  *slog.Logger
	Pins    mcphost.PinStore
	Auditor mcphost.Auditor
	Scanner mcphost.ResultScanner
	Hooks   mcphost.Hooks
}

// newHost calls mcphost.New with the collaborators in d.
func newHost(cfg mcphost.Config, d hostDeps) (*mcphost.Host, error) {
	if d.Logger != nil {
		cfg.Logger = d.Logger
	}
	return mcphost.New(cfg, d.Pins, d.Auditor, d.Scanner, d.Hooks)
}

func startHost(t *testing.T, cfg mcphost.Config, deps hostDeps) *mcphost.Host {
	t.Helper()
	h, err := newHost(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// lastRecord returns the newest audit record.
func lastRecord(t *testing.T, r *mcphosttest.Recorder) mcphost.AuditRecord {
	t.Helper()
	recs := r.Records()
	if len(recs) == 0 {
		t.Fatal("no audit record")
	}
	return recs[len(recs)-1]
}

// scannerFunc adapts a function to mcphost.ResultScanner.
type scannerFunc func(context.Context, mcphost.ScanInput) (mcphost.ScanVerdict, error)

func (f scannerFunc) ScanResult(ctx context.Context, in mcphost.ScanInput) (mcphost.ScanVerdict, error) {
	return f(ctx, in)
}

// wantStep fails unless err is a denial at step with code.
func wantStep(t *testing.T, err error, step mcphost.Step, code error) {
	t.Helper()
	if err == nil {
		t.Fatalf("call succeeded, want a denial at step %s", step)
	}
	if got := mcphost.StepOf(err); got != step {
		t.Fatalf("denied at step %q, want %q: %v", got, step, err)
	}
	if !errors.Is(err, code) {
		t.Fatalf("error %v does not carry %v", err, code)
	}
}
