//go:build cgo && linux

package nvml

import (
	"context"
	"fmt"
	"sync"
	"time"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"

	"github.com/talos-ironclad/talos/vram"
)

// Available reports whether this build can use NVML (cgo on Linux).
const Available = true

// NVML reads GPU memory through NVIDIA's NVML library.
type NVML struct {
	lib       gonvml.Interface
	index     int
	initRetry time.Duration

	mu       sync.Mutex
	inited   bool
	failedAt time.Time
	initErr  *vram.ProbeError
}

// New returns an NVML reader of GPU cfg.Index using the system's
// libnvidia-ml.so.1 (loaded on the first reading).
func New(cfg Config) *NVML { return NewWithLibrary(gonvml.New(), cfg) }

// NewWithLibrary returns an NVML reader over lib, for example a mock from
// github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100.
func NewWithLibrary(lib gonvml.Interface, cfg Config) *NVML {
	cfg = cfg.withDefaults()
	return &NVML{lib: lib, index: cfg.Index, initRetry: cfg.InitRetry}
}

// Memory implements vram.GPU.
func (n *NVML) Memory(ctx context.Context) (vram.Reading, error) {
	if err := ctx.Err(); err != nil {
		return vram.Reading{}, &vram.ProbeError{Kind: vram.ProbeTimeout, Source: "nvml", Err: err}
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.inited {
		if n.initErr != nil && time.Since(n.failedAt) < n.initRetry {
			return vram.Reading{}, n.initErr
		}
		if ret := n.lib.Init(); ret != gonvml.SUCCESS {
			n.initErr = probe(ret, "nvmlInit")
			n.failedAt = time.Now()
			return vram.Reading{}, n.initErr
		}
		n.inited, n.initErr = true, nil
	}
	count, ret := n.lib.DeviceGetCount()
	if ret != gonvml.SUCCESS {
		return vram.Reading{}, n.fail(ret, "nvmlDeviceGetCount")
	}
	if n.index >= count {
		return vram.Reading{}, &vram.ProbeError{Kind: vram.ProbeGPUNotFound, Source: "nvml", Detail: fmt.Sprintf("GPU index %d, NVML sees %d GPUs", n.index, count)}
	}
	dev, ret := n.lib.DeviceGetHandleByIndex(n.index)
	if ret != gonvml.SUCCESS {
		return vram.Reading{}, n.fail(ret, "nvmlDeviceGetHandleByIndex")
	}
	mem, ret := dev.GetMemoryInfo()
	if ret != gonvml.SUCCESS {
		return vram.Reading{}, n.fail(ret, "nvmlDeviceGetMemoryInfo")
	}
	if mem.Total == 0 || mem.Used > mem.Total {
		return vram.Reading{}, &vram.ProbeError{Kind: vram.ProbeParseError, Source: "nvml", Detail: fmt.Sprintf("implausible memory info used=%d total=%d", mem.Used, mem.Total)}
	}
	return vram.Reading{Used: mem.Used, Total: mem.Total, Source: "nvml", At: time.Now()}, nil
}

// fail classifies ret; a lost GPU or driver error shuts NVML down so the
// next reading initialises it again.
func (n *NVML) fail(ret gonvml.Return, call string) *vram.ProbeError {
	pe := probe(ret, call)
	if pe.Kind == vram.ProbeDriverError {
		n.lib.Shutdown()
		n.inited = false
	}
	return pe
}

// Close shuts NVML down if it was initialised.
func (n *NVML) Close() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !n.inited {
		return nil
	}
	n.inited = false
	if ret := n.lib.Shutdown(); ret != gonvml.SUCCESS {
		return probe(ret, "nvmlShutdown")
	}
	return nil
}

// probe maps an NVML return code onto the spec's kinds.
func probe(ret gonvml.Return, call string) *vram.ProbeError {
	kind := vram.ProbeUnknown
	switch ret {
	case gonvml.ERROR_LIBRARY_NOT_FOUND, gonvml.ERROR_FUNCTION_NOT_FOUND:
		kind = vram.ProbeCommandNotFound
	case gonvml.ERROR_DRIVER_NOT_LOADED, gonvml.ERROR_GPU_IS_LOST, gonvml.ERROR_RESET_REQUIRED,
		gonvml.ERROR_LIB_RM_VERSION_MISMATCH, gonvml.ERROR_UNINITIALIZED, gonvml.ERROR_CORRUPTED_INFOROM:
		kind = vram.ProbeDriverError
	case gonvml.ERROR_NOT_FOUND, gonvml.ERROR_INVALID_ARGUMENT:
		kind = vram.ProbeGPUNotFound
	case gonvml.ERROR_NO_PERMISSION:
		kind = vram.ProbePermissionDenied
	case gonvml.ERROR_TIMEOUT:
		kind = vram.ProbeTimeout
	}
	return &vram.ProbeError{Kind: kind, Source: "nvml", Detail: call + ": " + gonvml.ErrorString(ret)}
}
