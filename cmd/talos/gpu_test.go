package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/llm/ollama"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/nvml"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// The daemon wires llm/ollama's client in as the VRAM mutex's runtime.
var _ vram.Runtime = (*ollama.Client)(nil)

func runGPUCmd(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(append([]string{"gpu", "status"}, args...))
	err := root.Execute()
	return out.String(), err
}

// withFakeSMI puts a fake nvidia-smi printing out first in PATH (or, with
// out == "", a PATH with no nvidia-smi at all).
func withFakeSMI(t *testing.T, out string) {
	t.Helper()
	dir := t.TempDir()
	if out != "" {
		script := "#!/bin/sh\nprintf '" + out + "\\n'\n"
		if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir)
}

func skipIfRealNVML(t *testing.T) {
	if _, err := nvml.New(nvml.Config{}).Memory(context.Background()); err == nil {
		t.Skip("this machine has a real NVIDIA GPU: NVML answers before the fake nvidia-smi")
	}
}

// daemonWithMutex serves a real vram.Mutex's Handler, with coder resident
// and one lease held.
func daemonWithMutex(t *testing.T) string {
	t.Helper()
	gpu := vramtest.NewGPU(24 * vram.GiB)
	rt := vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB}, gpu, nil)
	m, err := vram.New(vram.Config{Models: map[string]vram.Model{"coder": {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB}}}, rt, gpu, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	l, err := m.Acquire(context.Background(), "coder")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Release)
	srv := httptest.NewServer(vram.Handler(m))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestGPUStatusWithSMIAndDaemon(t *testing.T) {
	skipIfRealNVML(t)
	withFakeSMI(t, "1536, 8192")
	addr := daemonWithMutex(t)
	out, err := runGPUCmd(t, "--addr", addr)
	if err != nil {
		t.Fatalf("gpu status: %v\n%s", err, out)
	}
	for _, want := range []string{"GPU 0 (nvidia-smi): 1.5 GB used of 8.0 GB, 6.5 GB free", "VRAM mutex (daemon at " + addr + "): ready, model coder, 1 leases, 0 waiting"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestGPUStatusJSON(t *testing.T) {
	skipIfRealNVML(t)
	withFakeSMI(t, "1024, 4096")
	addr := daemonWithMutex(t)
	out, err := runGPUCmd(t, "--addr", addr, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		GPU   vram.Reading `json:"gpu"`
		Mutex vram.Stats   `json:"mutex"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if st.GPU.Used != 1024*vram.MiB || st.GPU.Source != "nvidia-smi" || st.Mutex.State != vram.Ready || st.Mutex.Model != "coder" {
		t.Fatalf("json %+v", st)
	}
}

func TestGPUStatusNoGPU(t *testing.T) {
	skipIfRealNVML(t)
	withFakeSMI(t, "")
	out, err := runGPUCmd(t, "--addr", "127.0.0.1:1")
	if err == nil || exitCode(err) != exitNoGPU {
		t.Fatalf("err %v (exit %d), want exit %d", err, exitCode(err), exitNoGPU)
	}
	if !strings.Contains(out, "GPU: no GPU found") || !strings.Contains(out, "ENTER_CPU_MODE") {
		t.Errorf("output does not say clearly that there is no GPU:\n%s", out)
	}
	if !strings.Contains(out, "VRAM mutex: unknown: daemon not reachable at http://127.0.0.1:1/vram") {
		t.Errorf("output does not explain the unreachable daemon:\n%s", out)
	}
}

func TestGPUStatusDriverError(t *testing.T) {
	skipIfRealNVML(t)
	dir := t.TempDir()
	script := "#!/bin/sh\necho \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\"\nexit 9\n"
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	out, err := runGPUCmd(t, "--addr", "127.0.0.1:1")
	if exitCode(err) != exitNoGPU {
		t.Fatalf("err %v, want exit %d", err, exitNoGPU)
	}
	if !strings.Contains(out, "DRIVER_ERROR") || !strings.Contains(out, "RESTART_REQUIRED") {
		t.Errorf("output:\n%s", out)
	}
}
