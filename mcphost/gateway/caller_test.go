package gateway_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost/gateway"
)

func TestToolAction(t *testing.T) {
	for in, want := range map[string]string{"fs.read": "mcp/tools/fs/read", "fs.a.b": "mcp/tools/fs/a.b", "x": "mcp/tools/x"} {
		if got := gateway.ToolAction(in); got != want {
			t.Errorf("ToolAction(%q) = %q, want %q", in, got, want)
		}
	}
}

// A caller's token scopes decide which tools it sees and may call (an
// unlisted tool is not found), its session's bucket limits the calls, and
// each call's decision is recorded.
func TestCallerScopesAndRateLimit(t *testing.T) {
	h, _ := hostWithTools(t)
	g := gateway.NewServer(h, "talos", "1")
	root, agent := ident(t, "root"), ident(t, "agent")
	log := gateway.NewDecisionLog(0)
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{root.PeerID()}, Decisions: log}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// mcp-go's stdio session is one per process: each client's server
	// ends (stop) before the next starts.
	open := func(tok string) (*client.Client, func()) {
		ctx, cancel := context.WithCancel(gateway.WithCaller(context.Background(), v.NewSession(gateway.RateLimit{PerSecond: 0.001, Burst: 2}), tok))
		srvIn, clientOut := io.Pipe()
		clientIn, srvOut := io.Pipe()
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = server.NewStdioServer(g.MCPServer()).Listen(ctx, srvIn, srvOut)
		}()
		c := client.NewClient(transport.NewIO(clientIn, clientOut, nil))
		connect(t, c)
		stop := func() {
			cancel()
			srvIn.Close()
			clientIn.Close()
			_ = c.Close()
			<-done
		}
		t.Cleanup(stop)
		return c, stop
	}

	// A token for another server's tools sees none of these and may call none.
	c, stop := open(issue(t, root, agent, time.Hour, "mcp/tools/other/*"))
	if list, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err != nil || len(list.Tools) != 0 {
		t.Fatalf("listed: %v %+v", err, list)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "fs.read"
	if _, err := c.CallTool(context.Background(), req); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("a call the token does not grant: %v", err)
	}
	stop()

	c, _ = open(issue(t, root, agent, time.Hour, "mcp/tools/fs/read"))
	list, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil || len(list.Tools) != 1 || list.Tools[0].Name != "fs.read" {
		t.Fatalf("listed: %v %+v", err, list)
	}
	if text, isErr := callText(t, c, "fs.read", map[string]any{"path": "/tmp/a"}); isErr || !strings.Contains(text, "contents of /tmp/a") {
		t.Fatalf("a granted call: %s", text)
	}
	if text, isErr := callText(t, c, "fs.read", map[string]any{"path": "/tmp/b"}); isErr {
		t.Fatalf("the second call within the burst: %s", text)
	}
	// The bucket (burst 2) is empty now.
	if text, isErr := callText(t, c, "fs.read", map[string]any{"path": "/tmp/c"}); !isErr || !strings.Contains(text, "rate limit") {
		t.Fatalf("a call over the session's limit: %s", text)
	}
	ds := log.Decisions()
	if len(ds) != 3 || !ds[0].Allowed || ds[0].Action != "mcp/tools/fs/read" || ds[0].Subject != agent.PeerID() ||
		!ds[1].Allowed || ds[2].Allowed || ds[2].Code != talos.CodeRateLimited {
		t.Fatalf("decisions: %+v", ds)
	}
}
