package talos_test

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
)

func ExampleWithCorrelation() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{} // keep the example's output stable
		}
		return a
	}})
	log := slog.New(talos.WithCorrelation(h))
	ctx := talos.WithCorrelationID(context.Background(), "0123456789abcdef")
	log.InfoContext(ctx, "request served")
	// Output:
	// level=INFO msg="request served" correlation_id=0123456789abcdef
}

func TestCorrelationIDs(t *testing.T) {
	id := talos.NewCorrelationID()
	if !talos.ValidCorrelationID(id) || talos.ValidCorrelationID(strings.ToUpper("ABCDEF0123456789")) || talos.ValidCorrelationID("x") {
		t.Fatalf("ValidCorrelationID wrong for %q", id)
	}
	ctx := talos.WithCorrelationID(context.Background(), "evil\nvalue")
	if got := talos.CorrelationID(ctx); !talos.ValidCorrelationID(got) {
		t.Fatalf("an invalid ID was kept: %q", got)
	}
	ctx2, got := talos.EnsureCorrelationID(ctx)
	if ctx2 != ctx || got != talos.CorrelationID(ctx) {
		t.Fatal("EnsureCorrelationID replaced an existing ID")
	}
	if _, fresh := talos.EnsureCorrelationID(context.Background()); !talos.ValidCorrelationID(fresh) {
		t.Fatal("EnsureCorrelationID minted an invalid ID")
	}
	if talos.CorrelationID(nil) != "" { //nolint:staticcheck // a nil context is tolerated
		t.Fatal("nil context")
	}
}
