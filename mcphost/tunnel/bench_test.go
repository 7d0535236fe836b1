package tunnel_test

import (
	"context"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/gateway"
	"github.com/talos-ironclad/talos/mcphost/tunnel"
)

// BenchmarkTunnelRoundTrip is one tools/call through the whole tunnel on
// loopback: client → bridge → TLS → gateway → Host pipeline → server and
// back. p50-ns/op is the median.
func BenchmarkTunnelRoundTrip(b *testing.B) {
	srvID, _ := gateway.NewIdentity("server")
	me, _ := gateway.NewIdentity("desktop")
	addr, _ := serveB(b, srvID, me.PeerID())
	benchRoundTrip(b, addr, me, srvID, "")
}

// BenchmarkTunnelRoundTripTokens is the same with a token required at
// connect (FileState) and checked per call: the session's cached scope
// match and token bucket.
func BenchmarkTunnelRoundTripTokens(b *testing.B) {
	srvID, _ := gateway.NewIdentity("server")
	me, _ := gateway.NewIdentity("desktop")
	st, err := gateway.NewFileState(filepath.Join(b.TempDir(), "auth.json"))
	if err != nil {
		b.Fatal(err)
	}
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{srvID.PeerID()}, Decisions: gateway.NewDecisionLog(0)}, st)
	if err != nil {
		b.Fatal(err)
	}
	files := server.NewMCPServer("files", "1", server.WithToolCapabilities(true))
	files.AddTool(mcp.NewTool("read", mcp.WithDescription("Read a file"), mcp.WithString("path", mcp.Required())),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(marker), nil
		})
	addr, _ := serveHostWith(b, srvID, me.PeerID(), mcphost.Config{Servers: []mcphost.ServerConfig{{Name: "fs", InProcess: files, AutoStart: true}}},
		tunnel.Options{Verifier: v, RateLimit: gateway.RateLimit{PerSecond: 1e9}})
	tok, err := gateway.Issue(srvID, me.PeerID(), []string{tunnel.ConnectAction, gateway.ToolAction("fs.read")}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	benchRoundTrip(b, addr, me, srvID, tok)
}

func benchRoundTrip(b *testing.B, addr string, me, srvID *gateway.Identity, token string) {
	ctx := context.Background()
	conn, err := tunnel.DialWith(ctx, addr, me, srvID.PeerID(), token)
	if err != nil {
		b.Fatal(err)
	}
	in, clientOut := io.Pipe()
	clientIn, out := io.Pipe()
	go func() { _ = tunnel.Bridge(ctx, conn, in, out) }()
	c := client.NewClient(transport.NewIO(clientIn, clientOut, nil))
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(ctx, init); err != nil {
		b.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = "fs.read", map[string]any{"path": "a"}
	var d []time.Duration
	for b.Loop() {
		t0 := time.Now()
		if res, err := c.CallTool(ctx, req); err != nil || res.IsError {
			b.Fatal(err, res)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns/op")
}
