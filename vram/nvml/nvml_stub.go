//go:build !cgo || !linux

package nvml

import (
	"context"

	"github.com/talos-ironclad/talos/vram"
)

// Available reports whether this build can use NVML (cgo on Linux).
const Available = false

// NVML is a stub: this build has no cgo (or is not Linux), so NVML cannot
// be loaded. Every reading fails with COMMAND_NOT_FOUND and Detect falls
// back to nvidia-smi.
type NVML struct{}

// New returns the stub reader.
func New(Config) *NVML { return &NVML{} }

// Memory implements vram.GPU; it always fails.
func (*NVML) Memory(context.Context) (vram.Reading, error) {
	return vram.Reading{}, &vram.ProbeError{Kind: vram.ProbeCommandNotFound, Source: "nvml",
		Detail: "this binary was built without cgo, so NVML is unavailable; rebuild with CGO_ENABLED=1 or rely on nvidia-smi"}
}

// Close does nothing.
func (*NVML) Close() error { return nil }
