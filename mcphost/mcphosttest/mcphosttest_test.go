package mcphosttest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/mcphosttest"
)

func TestMemoryPinsConformance(t *testing.T) {
	mcphosttest.PinStoreConformance(t, func(*testing.T) mcphost.PinStore { return mcphost.NewMemoryPins() })
}

func TestRecorderAndScannerWithAHost(t *testing.T) {
	rec := &mcphosttest.Recorder{}
	scan := &mcphosttest.Scanner{Verdict: mcphost.ScanVerdict{Action: mcphost.ScanFlag, Reason: "odd"}}
	h := newHost(t, rec, scan)
	res, err := h.Call(context.Background(), "s.hi", nil)
	if err != nil || !res.Flagged {
		t.Fatalf("%v %+v", err, res)
	}
	if in := scan.Inputs(); len(in) != 1 || in[0].Text != "hello" {
		t.Errorf("scanner saw %+v", in)
	}
	if r := rec.Records(); len(r) != 1 || !r[0].Allowed || r[0].Scan != mcphost.ScanFlag {
		t.Errorf("records %+v", r)
	}

	rec.Err = errors.New("audit log unavailable")
	if _, err := h.Call(context.Background(), "s.hi", nil); mcphost.StepOf(err) != mcphost.StepAudit {
		t.Errorf("a failing Recorder did not deny: %v", err)
	}
}

func newHost(t *testing.T, auditor mcphost.Auditor, scanner mcphost.ResultScanner) *mcphost.Host {
	s := server.NewMCPServer("s", "1")
	s.AddTool(mcp.NewTool("hi"), func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("hello"), nil
	})
	h, err := mcphost.New(mcphost.Config{Servers: []mcphost.ServerConfig{{Name: "s", InProcess: s, AutoStart: true}}}, nil, auditor, scanner, mcphost.Hooks{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	return h
}

// A test checks what its own code asked of the tools: the Recorder keeps
// each call's shape (never the values).
func ExampleRecorder() {
	s := server.NewMCPServer("s", "1")
	s.AddTool(mcp.NewTool("greet", mcp.WithString("name")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("hi"), nil
	})
	rec := &mcphosttest.Recorder{}
	h, _ := mcphost.New(mcphost.Config{Servers: []mcphost.ServerConfig{{Name: "s", InProcess: s}}}, nil, rec, nil, mcphost.Hooks{})
	defer h.Close()
	_ = h.Start(context.Background())
	_, _ = h.Call(context.Background(), "s.greet", map[string]any{"name": "Ada"})
	_, _ = h.Call(context.Background(), "s.missing", nil)
	for _, r := range rec.Records() {
		fmt.Printf("%s.%s args=%v allowed=%v step=%q\n", r.Server, r.Tool, r.Args, r.Allowed, r.Step)
	}
	// Output:
	// s.greet args=[{name 5}] allowed=true step=""
	// s.missing args=[] allowed=false step="lookup"
}

func TestFilePinsConformance(t *testing.T) {
	mcphosttest.PinStoreConformance(t, func(t *testing.T) mcphost.PinStore {
		p, err := mcphost.NewFilePins(filepath.Join(t.TempDir(), "pins.json"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	})
}

func TestFilePinsSurviveReopeningAndRefuseLooseModes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pins.json")
	p, err := mcphost.NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := p.SavePins(ctx, "stdio:fs:1", map[string]string{"read": "h1"}); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o", st.Mode().Perm())
	}
	again, err := mcphost.NewFilePins(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, found, _ := again.LoadPins(ctx, "stdio:fs:1"); !found || got["read"] != "h1" {
		t.Fatalf("after reopening: %v %v", got, found)
	}
	_ = os.Chmod(path, 0o644)
	if _, err := mcphost.NewFilePins(path); !errors.Is(err, talos.ErrDirPermissions) {
		t.Errorf("a world-readable pin file was accepted: %v", err)
	}
	_ = os.Chmod(path, 0o600)
	_ = os.WriteFile(path, []byte("{not json"), 0o600)
	if _, err := mcphost.NewFilePins(path); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("a corrupt pin file was accepted: %v", err)
	}
}
