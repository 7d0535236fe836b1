//go:build cgo && linux

package nvml_test

import (
	"context"
	"errors"
	"testing"

	gonvml "github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock/dgxa100"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/nvml"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

func dgx(t *testing.T, used uint64) *dgxa100.Server {
	t.Helper()
	s := dgxa100.New()
	for _, d := range s.Devices {
		dev := d.(*dgxa100.Device)
		dev.MemoryInfo.Used = used
		dev.MemoryInfo.Free = dev.MemoryInfo.Total - used
	}
	return s
}

func TestNVMLReadsMockDGX(t *testing.T) {
	s := dgx(t, 3*vram.GiB)
	g := nvml.NewWithLibrary(s, nvml.Config{Index: 7})
	r, err := g.Memory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != "nvml" || r.Used != 3*vram.GiB || r.Total != 40960*vram.MiB || r.Stale {
		t.Fatalf("reading %+v, want 3 GiB used of an A100 40 GB", r)
	}
	// The reading follows the device.
	s.Devices[7].(*dgxa100.Device).MemoryInfo.Used = 10 * vram.GiB
	if r, _ := g.Memory(context.Background()); r.Used != 10*vram.GiB {
		t.Fatalf("second reading %+v, want 10 GiB used", r)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestNVMLConformance(t *testing.T) {
	vramtest.RunGPU(t, func(t *testing.T) vram.GPU { return nvml.NewWithLibrary(dgx(t, vram.GiB), nvml.Config{}) })
}

func TestNVMLIndexOutOfRange(t *testing.T) {
	g := nvml.NewWithLibrary(dgxa100.New(), nvml.Config{Index: 8})
	_, err := g.Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeGPUNotFound || !errors.Is(err, talos.ErrGPUQuery) {
		t.Fatalf("index 8 of 8 GPUs: %v, want GPU_NOT_FOUND", err)
	}
}

// The NVML return codes map onto the spec's kinds.
func TestNVMLErrorKinds(t *testing.T) {
	for ret, want := range map[gonvml.Return]vram.ProbeKind{
		gonvml.ERROR_GPU_IS_LOST:       vram.ProbeDriverError,
		gonvml.ERROR_DRIVER_NOT_LOADED: vram.ProbeDriverError,
		gonvml.ERROR_NO_PERMISSION:     vram.ProbePermissionDenied,
		gonvml.ERROR_TIMEOUT:           vram.ProbeTimeout,
		gonvml.ERROR_NOT_FOUND:         vram.ProbeGPUNotFound,
		gonvml.ERROR_UNKNOWN:           vram.ProbeUnknown,
	} {
		s := dgxa100.New()
		dev := s.Devices[0].(*dgxa100.Device)
		dev.GetMemoryInfoFunc = func() (gonvml.Memory, gonvml.Return) { return gonvml.Memory{}, ret }
		g := nvml.NewWithLibrary(s, nvml.Config{})
		_, err := g.Memory(context.Background())
		if got := vram.KindOf(err); got != want {
			t.Errorf("%v: kind %v, want %v (%v)", ret, got, want, err)
		}
	}
}

func TestNVMLDriverErrorReinitialises(t *testing.T) {
	s := dgx(t, vram.GiB)
	dev := s.Devices[0].(*dgxa100.Device)
	lost := true
	dev.GetMemoryInfoFunc = func() (gonvml.Memory, gonvml.Return) {
		if lost {
			return gonvml.Memory{}, gonvml.ERROR_GPU_IS_LOST
		}
		return dev.MemoryInfo, gonvml.SUCCESS
	}
	g := nvml.NewWithLibrary(s, nvml.Config{})
	if _, err := g.Memory(context.Background()); vram.KindOf(err) != vram.ProbeDriverError {
		t.Fatalf("lost GPU: %v", err)
	}
	if n := len(s.ShutdownCalls()); n != 1 {
		t.Fatalf("Shutdown called %d times after a lost GPU, want 1", n)
	}
	lost = false
	if _, err := g.Memory(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(s.InitCalls()); n != 2 {
		t.Fatalf("Init called %d times, want 2 (re-initialised after the loss)", n)
	}
}

func TestNVMLInitFailureIsRemembered(t *testing.T) {
	lib := &mock.Interface{InitFunc: func() gonvml.Return { return gonvml.ERROR_LIBRARY_NOT_FOUND }}
	g := nvml.NewWithLibrary(lib, nvml.Config{})
	for range 3 {
		_, err := g.Memory(context.Background())
		if vram.KindOf(err) != vram.ProbeCommandNotFound {
			t.Fatalf("missing library: %v, want COMMAND_NOT_FOUND", err)
		}
		if h := vram.HandlingFor(vram.KindOf(err)); h.Action != vram.ActionEnterCPUMode {
			t.Fatalf("missing library: action %v", h.Action)
		}
	}
	if n := len(lib.InitCalls()); n != 1 {
		t.Fatalf("Init called %d times in the retry window, want 1", n)
	}
}

func TestNVMLCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := nvml.NewWithLibrary(dgxa100.New(), nvml.Config{}).Memory(ctx)
	if vram.KindOf(err) != vram.ProbeTimeout {
		t.Fatalf("cancelled: %v", err)
	}
}

// On this machine (no NVIDIA driver) the real library is missing; on a GPU
// host the reading succeeds. Either way the answer is classified.
func TestNVMLRealLibrary(t *testing.T) {
	g := nvml.New(nvml.Config{})
	defer g.Close()
	r, err := g.Memory(context.Background())
	if err == nil {
		if r.Total == 0 {
			t.Fatalf("real NVML reading %+v has no memory", r)
		}
		return
	}
	if k := vram.KindOf(err); k != vram.ProbeCommandNotFound && k != vram.ProbeDriverError {
		t.Fatalf("real NVML without a GPU: %v, want COMMAND_NOT_FOUND or DRIVER_ERROR", err)
	}
}
