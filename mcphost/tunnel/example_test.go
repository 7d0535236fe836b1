package tunnel_test

import (
	"context"
	"fmt"
	"io"
	"net"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/gateway"
	"github.com/talos-ironclad/talos/mcphost/tunnel"
)

// A workstation serves its tools to one laptop; the laptop's MCP client
// reaches them through the pinned TLS tunnel.
func Example() {
	workstation, _ := gateway.NewIdentity("workstation")
	laptop, _ := gateway.NewIdentity("laptop")

	tools := server.NewMCPServer("tools", "1")
	tools.AddTool(mcp.NewTool("hello"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("hello through the tunnel"), nil
	})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = tunnel.Serve(ctx, ln, workstation, laptop.PeerID(), tools, nil) }()

	conn, err := tunnel.Dial(ctx, ln.Addr().String(), laptop, workstation.PeerID())
	if err != nil {
		fmt.Println(err)
		return
	}
	in, clientOut := io.Pipe()
	clientIn, out := io.Pipe()
	go func() { _ = tunnel.Bridge(ctx, conn, in, out) }()

	c := client.NewClient(transport.NewIO(clientIn, clientOut, nil))
	_ = c.Start(ctx)
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(ctx, init); err != nil {
		fmt.Println(err)
		return
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "hello"
	res, err := c.CallTool(ctx, req)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(res.Content[0].(mcp.TextContent).Text)
	// Output: hello through the tunnel
}
