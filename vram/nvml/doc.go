// Package nvml reads GPU memory for package vram: through NVIDIA's NVML
// library (github.com/NVIDIA/go-nvml, which needs cgo on Linux) and through
// the nvidia-smi command as a fallback.
//
// Most callers want Detect, which tries NVML first and nvidia-smi second and
// remembers the last good reading:
//
//	gpu := nvml.Detect(nvml.Config{})
//	r, err := gpu.Memory(ctx)
//	if err != nil {
//		h := vram.HandlingFor(vram.KindOf(err)) // the spec's error → action table
//		...
//	}
//
// NVML needs no subprocess and answers in microseconds; it is built only
// with cgo on Linux (a build without cgo gets a stub that reports
// COMMAND_NOT_FOUND, so Detect falls through to nvidia-smi). nvidia-smi is
// run as
//
//	nvidia-smi --query-gpu=memory.used,memory.total --format=csv,noheader,nounits
//
// with a 5 s timeout; its failures are classified into the
// spec's kinds (COMMAND_NOT_FOUND, DRIVER_ERROR, GPU_NOT_FOUND, TIMEOUT,
// PARSE_ERROR, PERMISSION_DENIED, UNKNOWN). After a timeout it backs off
// (1 s doubling to 60 s) instead of stacking 5 s calls, and a parse error
// returns the last known reading marked Stale.
package nvml
