//go:build linux

package nvml_test

import (
	"context"
	"errors"
	"io"
	"testing"

	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/nvml"
)

// TestSMIUnderReaper: in a process whose reaper.Reaper owns wait4, nvidia-smi
// started through Config.Run gets its output and exit status (a plain
// exec.Cmd there can lose its status to the Reaper and fail with ECHILD).
func TestSMIUnderReaper(t *testing.T) {
	r, err := reaper.New(reaper.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	run := func(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
		c := r.CommandContext(ctx, name, args...)
		c.Cmd.Stdout, c.Cmd.Stderr = stdout, stderr
		return c.Run()
	}
	for range 20 { // many children, so the Reaper's wait4 loop is busy
		got, err := smiAt(fakeSMI(t, "echo '2048, 8192'"), nvml.Config{Run: run}).Memory(context.Background())
		if err != nil || got.Used != 2048*vram.MiB || got.Total != 8192*vram.MiB {
			t.Fatalf("reading through the Reaper: %+v, %v", got, err)
		}
	}
	_, err = smiAt(fakeSMI(t, "echo 'NVIDIA-SMI has failed because it could not communicate with the NVIDIA driver' >&2; exit 9"),
		nvml.Config{Run: run}).Memory(context.Background())
	var pe *vram.ProbeError
	if !errors.As(err, &pe) || pe.Kind != vram.ProbeDriverError {
		t.Fatalf("failing nvidia-smi through the Reaper: %v, want a %s probe error", err, vram.ProbeDriverError)
	}
}
