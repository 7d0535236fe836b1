package mcphost_test

import (
	"context"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/talos-ironclad/talos/mcphost"
)

// A Go program serves its own tools in process and lets a small model call
// them through the pipeline: the catalog goes into the prompt, the model's
// text-form calls are parsed, run and formatted back.
func Example() {
	tools := server.NewMCPServer("notes", "1", server.WithToolCapabilities(true))
	tools.AddTool(mcp.NewTool("lookup",
		mcp.WithDescription("Look up a note by its title"),
		mcp.WithString("title", mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			title, _ := req.GetArguments()["title"].(string)
			return mcp.NewToolResultText("note " + title + ": deploy key is AKIAIOSFODNN7EXAMPLE"), nil
		})

	h, err := mcphost.New(mcphost.Config{
		Servers: []mcphost.ServerConfig{{Name: "notes", InProcess: tools, AutoStart: true}},
	}, nil, nil, nil, mcphost.Hooks{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer h.Close()
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(h.Catalog().Text())

	answer := `Let me check. [USE_MCP: notes.lookup {"title": "ops}]"}]`
	calls, _ := mcphost.ParseTextCalls(answer, 0)
	for _, c := range calls {
		res, err := h.Call(ctx, c.Name, c.Args)
		fmt.Println(mcphost.FormatTextResult(c.Name, res, err, 0))
	}
	// Output:
	// MCP Tools (invoke via [USE_MCP: server.tool {json}]):
	//   notes.lookup(title) — Look up a note by its title
	// [MCP_RESULT notes.lookup]
	// note ops}]: deploy key is [REDACTED:aws-access-key]
	// [/MCP_RESULT]
}
