package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/mcphost"
)

// gatewayHome is a home whose config.yaml serves the real
// server-everything, and the --set flag that allows it.
func gatewayHome(t *testing.T) (string, []string) {
	t.Helper()
	bin := testenv.MCPEverything(t)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		t.Fatal(err)
	}
	home := initHome(t)
	yaml := "mcp_servers:\n  everything:\n    command: " + bin + "\n    timeout_seconds: 60\n    auto_start: true\n"
	if err := os.WriteFile(filepath.Join(home, "config", "config.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	return home, []string{"--home", home, "--set", "TALOS_MCP_ALLOWED_COMMANDS=" + filepath.Dir(real)}
}

func echoThrough(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(ctx, init); err != nil {
		t.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "everything.echo", map[string]any{"message": "through the gateway"}
	res, err := c.CallTool(ctx, req)
	if err != nil || res.IsError || !strings.Contains(res.Content[0].(mcp.TextContent).Text, "through the gateway") {
		t.Fatalf("echo: %v %+v", err, res)
	}
}

// An MCP client runs `talos mcp gateway --transport stdio` as its server
// and calls a real server's tool through the pipeline.
func TestMCPGatewayStdio(t *testing.T) {
	_, set := gatewayHome(t)
	c, err := client.NewStdioMCPClient(os.Args[0], []string{"TALOS_HELPER_ARGS=" + strings.Join(append([]string{"mcp", "gateway", "--transport", "stdio"}, set...), "\x1f")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	echoThrough(t, c)
}

// `talos mcp gateway --transport http` serves streamable HTTP on loopback
// behind the bearer token it writes (0600); without it: 401.
func TestMCPGatewayHTTP(t *testing.T) {
	home, set := gatewayHome(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TALOS_HELPER_ARGS="+strings.Join(append([]string{"mcp", "gateway", "--transport", "http"}, set...), "\x1f"))
	stdout, _ := cmd.StdoutPipe()
	var stderr testenv.LockedBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on http://") {
		t.Fatalf("%q %v\n%s", line, err, stderr.String())
	}
	url := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))
	path := filepath.Join(home, gatewayTokenFile)
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v %v", st, err)
	}
	b, _ := os.ReadFile(path)
	token := strings.TrimSpace(string(b))

	resp, err := http.Post(url, "application/json", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %v %v", resp, err)
	}
	resp.Body.Close()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"Authorization": "Bearer " + token}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	echoThrough(t, c)
	if strings.Contains(stderr.String(), token) {
		t.Error("the bearer token reached the log")
	}
}

func TestMCPGatewayBadArguments(t *testing.T) {
	_, set := gatewayHome(t)
	for _, args := range [][]string{{"--transport", "tcp"}, {"--transport", "http", "--addr", "0.0.0.0:0"}} {
		if _, _, err := talosCmd(context.Background(), append(append([]string{"mcp", "gateway"}, args...), set...)...); exitCode(err) != exitMCPBadArgs {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// A running `talos mcp gateway` publishes a server approved meanwhile with
// `talos mcp approve`, without a restart.
func TestMCPGatewayPublishesApprovedServer(t *testing.T) {
	home, set := gatewayHome(t)
	ctx := context.Background()
	if out, _, err := talosCmd(ctx, append([]string{"mcp", "status"}, set...)...); err != nil {
		t.Fatalf("first status: %v\n%s", err, out)
	}
	pinsPath := filepath.Join(home, host.MCPPinsFile)
	b, err := os.ReadFile(pinsPath)
	if err != nil {
		t.Fatal(err)
	}
	var pf map[string]any
	json.Unmarshal(b, &pf)
	for _, tools := range pf["pins"].(map[string]any) {
		tools.(map[string]any)["echo"] = strings.Repeat("0", 64)
	}
	b, _ = json.Marshal(pf)
	os.WriteFile(pinsPath, b, 0o600)

	c, err := client.NewStdioMCPClient(os.Args[0], []string{"TALOS_HELPER_ARGS=" + strings.Join(append([]string{"mcp", "gateway", "--transport", "stdio"}, set...), "\x1f")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(cctx, init); err != nil {
		t.Fatal(err)
	}
	hasEcho := func() bool {
		list, err := c.ListTools(cctx, mcp.ListToolsRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return slices.ContainsFunc(list.Tools, func(tl mcp.Tool) bool { return tl.Name == "everything.echo" })
	}
	if hasEcho() {
		t.Fatal("a quarantined server's tool is offered")
	}
	out, _, err := talosCmd(ctx, append([]string{"mcp", "status"}, set...)...)
	fp := regexp.MustCompile(`talos mcp approve everything (\S+)`).FindStringSubmatch(out)
	if err != nil || fp == nil {
		t.Fatalf("status: %v\n%s", err, out)
	}
	if _, _, err := talosCmd(ctx, append([]string{"mcp", "approve", "everything", fp[1]}, set...)...); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * approvalPoll)
	for !hasEcho() {
		if time.Now().After(deadline) {
			t.Fatalf("the approved server was not published within %s", 10*approvalPoll)
		}
		time.Sleep(50 * time.Millisecond)
	}
	echoCall := mcp.CallToolRequest{}
	echoCall.Params.Name, echoCall.Params.Arguments = "everything.echo", map[string]any{"message": "approved"}
	if res, err := c.CallTool(cctx, echoCall); err != nil || res.IsError {
		t.Fatalf("a call after the approval: %v %+v", err, res)
	}
}
