package tlog_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/talos-ironclad/talos/internal/tlog"
)

func Example() {
	dir, _ := os.MkdirTemp("", "tier1")
	defer os.RemoveAll(dir)

	h, err := tlog.Open(dir, tlog.Tier1, tlog.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	audit := slog.New(h)
	ctx := tlog.WithCorrelationID(context.Background(), tlog.NewCorrelationID())
	tlog.Audit(ctx, audit, "sockproxy_denied", slog.String("path", "/containers/create"))
	tlog.Audit(ctx, audit, "lockdown_engaged")
	h.Close()

	rep, err := tlog.Verify(dir)
	fmt.Println("lines:", rep.Lines, "last seq:", rep.Last, "error:", err)
	// Output:
	// lines: 2 last seq: 2 error: <nil>
}
