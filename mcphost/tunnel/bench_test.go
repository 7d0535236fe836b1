package tunnel_test

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

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
	ctx := context.Background()
	conn, err := tunnel.Dial(ctx, addr, me, srvID.PeerID())
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
		if _, err := c.CallTool(ctx, req); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns/op")
}
