package mcphost_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/mcphost"
)

// benignText is size bytes of ordinary tool output (a README-like text).
func benignText(size int) string {
	const para = "The build reads its configuration from config.yaml and writes logs under ~/talos/logs. " +
		"Run `make test` to start the services, vet the code and run every test with the race detector. " +
		"Each package has a doc.go overview and runnable examples; fakes for tests live in a package named after it. "
	return strings.Repeat(para, size/len(para)+1)[:size]
}

func benchServer(text string) *server.MCPServer {
	s := server.NewMCPServer("bench", "1", server.WithToolCapabilities(true))
	s.AddTool(mcp.NewTool("read", mcp.WithString("path", mcp.Required())),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText(text), nil
		})
	return s
}

// timed runs op once per b.Loop iteration and reports the median as
// p50-ns/op beside the mean.
func timed(b *testing.B, op func() error) {
	var d []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		t0 := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(t0))
	}
	slices.Sort(d)
	b.ReportMetric(float64(d[len(d)/2].Nanoseconds()), "p50-ns/op")
}

// BenchmarkCallDirect is the baseline: an mcp-go client calling the
// in-process server directly.
func BenchmarkCallDirect4KB(b *testing.B) {
	c, err := client.NewInProcessClient(benchServer(benignText(4096)))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Start(ctx); err != nil {
		b.Fatal(err)
	}
	init := mcp.InitializeRequest{}
	init.Params.ProtocolVersion = mcphost.ProtocolVersion
	if _, err := c.Initialize(ctx, init); err != nil {
		b.Fatal(err)
	}
	req := mcp.CallToolRequest{}
	req.Params.Name = "read"
	req.Params.Arguments = map[string]any{"path": "/etc/motd"}
	timed(b, func() error { _, err := c.CallTool(ctx, req); return err })
}

func benchPipeline(b *testing.B, scanner mcphost.ResultScanner) {
	h, err := newHost(mcphost.Config{Servers: []mcphost.ServerConfig{{Name: "s", InProcess: benchServer(benignText(4096)), AutoStart: true}}},
		hostDeps{Scanner: scanner, Auditor: discardAudit{}})
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	if err := h.Start(ctx); err != nil {
		b.Fatal(err)
	}
	args := map[string]any{"path": "/etc/motd"}
	timed(b, func() error { _, err := h.Call(ctx, "s.read", args); return err })
}

type discardAudit struct{}

func (discardAudit) AuditCall(context.Context, mcphost.AuditRecord) error { return nil }

// BenchmarkCallPipeline4KB is the same call through every step of the
// pipeline (secret redaction and audit on, no result scanner).
func BenchmarkCallPipeline4KB(b *testing.B) { benchPipeline(b, nil) }

// BenchmarkCallPipelineFirewall4KB adds the firewall as the result
// scanner (Source: tool).
func BenchmarkCallPipelineFirewall4KB(b *testing.B) {
	fw, err := firewall.New(firewall.Config{HistorySize: -1}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	benchPipeline(b, scannerFunc(func(ctx context.Context, in mcphost.ScanInput) (mcphost.ScanVerdict, error) {
		v, err := fw.Scan(ctx, firewall.Input{Text: in.Text, Source: firewall.SourceTool})
		if err != nil {
			return mcphost.ScanVerdict{}, err
		}
		switch {
		case v.Action.Blocks():
			return mcphost.ScanVerdict{Action: mcphost.ScanBlock, Reason: "firewall"}, nil
		case !v.Safe:
			return mcphost.ScanVerdict{Action: mcphost.ScanFlag, Reason: "firewall"}, nil
		}
		return mcphost.ScanVerdict{}, nil
	}))
}

// BenchmarkSecretScan10KB redacts a 10 KB result holding two secrets.
func BenchmarkSecretScan10KB(b *testing.B) {
	text := benignText(5000) + "\n" + testAWSKey + "\n" + benignText(5000) + testPrivateKey
	sc := mcphost.NewSecretScanner([]string{ourSecret})
	b.SetBytes(int64(len(text)))
	timed(b, func() error {
		counts := map[string]int{}
		sc.Redact(text, counts)
		if counts["aws-access-key"] != 1 || counts["private-key"] != 1 {
			b.Fatalf("counts %v", counts)
		}
		return nil
	})
}
