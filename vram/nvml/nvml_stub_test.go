//go:build !cgo || !linux

package nvml_test

import (
	"context"
	"testing"

	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/nvml"
)

func TestStubReportsCommandNotFound(t *testing.T) {
	if nvml.Available {
		t.Fatal("stub build claims NVML is available")
	}
	_, err := nvml.New(nvml.Config{}).Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeCommandNotFound {
		t.Fatalf("stub: %v, want COMMAND_NOT_FOUND", err)
	}
}
