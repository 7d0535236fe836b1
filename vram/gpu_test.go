package vram_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

func TestHandlingTable(t *testing.T) {
	// The original specification's error → action table, with
	// ESCALATE_PRIVILEGES replaced by FIX_CONFIG.
	want := map[vram.ProbeKind]vram.ProbeHandling{
		vram.ProbeCommandNotFound:  {Severity: vram.SeverityCritical, Action: vram.ActionEnterCPUMode},
		vram.ProbeDriverError:      {Severity: vram.SeverityCritical, Action: vram.ActionRestartRequired},
		vram.ProbeGPUNotFound:      {Severity: vram.SeverityCritical, Action: vram.ActionEnterCPUMode},
		vram.ProbeTimeout:          {Severity: vram.SeverityHigh, Action: vram.ActionRetryWithBackoff},
		vram.ProbeParseError:       {Severity: vram.SeverityMedium, Action: vram.ActionUseLastKnown},
		vram.ProbePermissionDenied: {Severity: vram.SeverityCritical, Action: vram.ActionFixConfig},
		vram.ProbeUnknown:          {Severity: vram.SeverityUnknown, Action: vram.ActionLogAndContinue},
		"SOMETHING_ELSE":           {Severity: vram.SeverityUnknown, Action: vram.ActionLogAndContinue},
	}
	for kind, w := range want {
		got := vram.HandlingFor(kind)
		if got.Severity != w.Severity || got.Action != w.Action || got.Message == "" {
			t.Errorf("HandlingFor(%s) = %+v, want %s/%s with a message", kind, got, w.Severity, w.Action)
		}
	}
	if m := vram.HandlingFor(vram.ProbeParseError).Message; m != "Parse error - using last known GPU state" {
		t.Errorf("parse error message %q", m)
	}
}

func TestProbeErrorIsT110(t *testing.T) {
	err := error(&vram.ProbeError{Kind: vram.ProbeTimeout, Source: "nvidia-smi", Detail: "no answer in 5s"})
	if !errors.Is(err, talos.ErrGPUQuery) || talos.CodeOf(err) != "" && talos.CodeOf(err) != talos.CodeGPUQuery {
		t.Fatalf("%v is not T110", err)
	}
	if errors.Is(err, talos.ErrVRAMTimeout) {
		t.Fatal("a probe error matches T100")
	}
	if s := err.Error(); !strings.HasPrefix(s, "T110") || !strings.Contains(s, "TIMEOUT") || !strings.Contains(s, "retry with backoff") {
		t.Fatalf("message %q", s)
	}
	wrapped := talos.E(talos.CodeGPUQuery, "op", "msg", err)
	if vram.KindOf(wrapped) != vram.ProbeTimeout {
		t.Fatalf("KindOf through a wrapper = %v", vram.KindOf(wrapped))
	}
}

func TestFallbackChain(t *testing.T) {
	ctx := context.Background()
	first, second := vramtest.NewGPU(8*vram.GiB), vramtest.NewGPU(16*vram.GiB)
	first.SetUsed(vram.GiB)
	g := vram.Fallback(first, second)

	r, err := g.Memory(ctx)
	if err != nil || r.Total != 8*vram.GiB || second.Calls() != 0 {
		t.Fatalf("first reader healthy: %+v %v (second called %d times)", r, err, second.Calls())
	}
	first.Fail(&vram.ProbeError{Kind: vram.ProbeCommandNotFound, Source: "nvml"})
	r, err = g.Memory(ctx)
	if err != nil || r.Total != 16*vram.GiB {
		t.Fatalf("fell back: %+v %v", r, err)
	}
	second.Fail(&vram.ProbeError{Kind: vram.ProbeParseError, Source: "nvidia-smi"})
	r, err = g.Memory(ctx)
	if err == nil || !r.Stale || r.Total != 16*vram.GiB {
		t.Fatalf("all failed: %+v %v, want the last known reading, stale, and an error", r, err)
	}
	if k := vram.KindOf(err); k != vram.ProbeParseError {
		t.Fatalf("KindOf = %v, want the last reader's PARSE_ERROR", k)
	}
	if !errors.Is(err, talos.ErrGPUQuery) || !strings.Contains(err.Error(), "COMMAND_NOT_FOUND") {
		t.Fatalf("joined error %v lost a reader's error", err)
	}
	// No reading ever: UNKNOWN state, zero reading.
	never := vramtest.NewGPU(1)
	never.Fail(&vram.ProbeError{Kind: vram.ProbeDriverError})
	r, err = vram.Fallback(never).Memory(ctx)
	if err == nil || r != (vram.Reading{}) {
		t.Fatalf("no reading ever: %+v %v", r, err)
	}
	if _, err := vram.Fallback().Memory(ctx); vram.KindOf(err) != vram.ProbeGPUNotFound {
		t.Fatalf("empty chain: %v", err)
	}
}

func TestFakeGPUConformance(t *testing.T) {
	vramtest.RunGPU(t, func(t *testing.T) vram.GPU { g := vramtest.NewGPU(8 * vram.GiB); g.SetUsed(vram.GiB); return g })
	vramtest.RunGPU(t, func(t *testing.T) vram.GPU { return vram.Fallback(vramtest.NewGPU(8 * vram.GiB)) })
}

func TestFakeRuntimeConformance(t *testing.T) {
	vramtest.RunRuntime(t, func(t *testing.T) (vram.Runtime, string) {
		return vramtest.NewRuntime(map[string]uint64{coder: 5 * vram.GiB}, vramtest.NewGPU(24*vram.GiB), vramtest.NewProcesses()), coder
	})
}

func TestReadingFree(t *testing.T) {
	if f := (vram.Reading{Used: 3, Total: 10}).Free(); f != 7 {
		t.Fatalf("Free = %d", f)
	}
	if f := (vram.Reading{Used: 11, Total: 10}).Free(); f != 0 {
		t.Fatalf("Free with used > total = %d", f)
	}
}
