package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// fakeOllama answers the daemon's /api/version probe.
func fakeOllama(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/version" {
			http.NotFound(w, r)
			return
		}
		_, _ = io.WriteString(w, `{"version":"0.34.4"}`)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// failingGPU fails every reading with a probe error of kind.
type failingGPU vram.ProbeKind

func (k failingGPU) Memory(context.Context) (vram.Reading, error) {
	return vram.Reading{}, &vram.ProbeError{Kind: vram.ProbeKind(k), Source: "fake", Detail: "injected"}
}

func getPath(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	resp, err := http.Get("http://" + addr + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func getVRAM(t *testing.T, addr string) vram.Stats {
	t.Helper()
	code, body := getPath(t, addr, vram.HandlerPath)
	if code != 200 {
		t.Fatalf("%s: %d %s", vram.HandlerPath, code, body)
	}
	var s vram.Stats
	if err := json.Unmarshal([]byte(body), &s); err != nil {
		t.Fatalf("%s: %v\n%s", vram.HandlerPath, err, body)
	}
	return s
}

// A readable GPU and a configured Ollama: the VRAM mutex is built with
// VRAM_MUTEX_TIMEOUT, served at /vram, exported on /metrics and shown by
// the gpu check; a lease taken through VRAM() shows everywhere; Stop
// closes the mutex.
func TestGPUWithOllamaMountsVRAMMutex(t *testing.T) {
	cfg := newHome(t, map[string]string{"TALOS_OLLAMA_URL": fakeOllama(t), "VRAM_MUTEX_TIMEOUT": "45"})
	gpu := vramtest.NewGPU(24 * vram.GiB)
	gpu.SetUsed(1 * vram.GiB)
	opts := fastOpts()
	opts.GPU = gpu
	opts.VRAMRuntime = vramtest.NewRuntime(map[string]uint64{"coder": 5 * vram.GiB}, gpu, nil)
	opts.VRAMModels = map[string]vram.Model{"coder": {MinFree: 7 * vram.GiB, Size: 5 * vram.GiB}}
	d := start(t, cfg, opts)

	step, ok := d.Report().Step(daemon.NameGPU)
	if !ok || step.Outcome != boot.OK || !strings.Contains(step.Detail, "1024 MB used of 24576 MB (fake)") ||
		!strings.Contains(step.Detail, "VRAM mutex on for models coder (acquire timeout 45s)") {
		t.Fatalf("gpu step %+v", step)
	}
	if d.Report().Degraded {
		t.Fatalf("degraded boot: %+v", d.Report().Steps)
	}
	if d.VRAM() == nil {
		t.Fatal("VRAM() is nil with a GPU and Ollama")
	}
	if s := getVRAM(t, d.HealthAddr()); s.State != vram.Idle || s.Leases != 0 {
		t.Fatalf("/vram at boot %+v", s)
	}
	_, h := getHealth(t, d)
	if c := h.Checks[daemon.NameGPU]; c.Status != health.StatusOK || c.Detail != "1024 MB used of 24576 MB (fake); VRAM mutex idle, model none, 0 leases, 0 waiting" {
		t.Fatalf("gpu check %+v", c)
	}

	lease, err := d.VRAM().Acquire(context.Background(), "coder")
	if err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	if s := getVRAM(t, d.HealthAddr()); s.State != vram.Ready || s.Model != "coder" || s.Leases != 1 || s.Loads != 1 {
		t.Fatalf("/vram with a lease %+v", s)
	}
	_, h = getHealth(t, d)
	if c := h.Checks[daemon.NameGPU]; c.Status != health.StatusOK || c.Detail != "6144 MB used of 24576 MB (fake); VRAM mutex ready, model coder, 1 leases, 0 waiting" {
		t.Fatalf("gpu check with a lease %+v", c)
	}
	code, metrics := getPath(t, d.HealthAddr(), "/metrics")
	if code != 200 || !strings.Contains(metrics, `talos_vram_state{state="ready"} 1`) || !strings.Contains(metrics, "talos_vram_leases 1") ||
		!strings.Contains(metrics, `talos_health_check_up`) {
		t.Fatalf("/metrics %d lacks the VRAM collector:\n%s", code, metrics)
	}
	lease.Release()

	// Reset needs the operator's credentials; with them, a mutex not in
	// Error answers 409 and nothing changes.
	for _, c := range []struct {
		user, pass string
		want       int
	}{{"", "", 401}, {cfg.BasicAuthUser, "wrong-password-123", 401}, {cfg.BasicAuthUser, testPass, 409}} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+d.HealthAddr()+vram.ResetPath, nil)
		if c.user != "" {
			req.SetBasicAuth(c.user, c.pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.want {
			t.Fatalf("POST %s as %q: %d, want %d", vram.ResetPath, c.user, resp.StatusCode, c.want)
		}
	}

	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := d.VRAM().Acquire(context.Background(), "coder"); !errors.Is(err, vram.ErrClosed) {
		t.Fatalf("Acquire after Stop: %v, want ErrClosed (the mutex closes on shutdown)", err)
	}
}

// Without Options.VRAMModels the mutex loads the models of
// TALOS_VRAM_MODELS, each refused unless its configured free VRAM is there.
func TestGPUModelsComeFromConfig(t *testing.T) {
	cfg := newHome(t, map[string]string{"TALOS_OLLAMA_URL": fakeOllama(t), "TALOS_VRAM_MODELS": "small:1b=2, big:70b=30"})
	gpu := vramtest.NewGPU(24 * vram.GiB)
	opts := fastOpts()
	opts.GPU = gpu
	opts.VRAMRuntime = vramtest.NewRuntime(map[string]uint64{"small:1b": 1 * vram.GiB, "big:70b": 20 * vram.GiB}, gpu, nil)
	d := start(t, cfg, opts)
	step, ok := d.Report().Step(daemon.NameGPU)
	if !ok || !strings.Contains(step.Detail, "VRAM mutex on for models big:70b, small:1b") {
		t.Fatalf("gpu step %+v", step)
	}
	lease, err := d.VRAM().Acquire(context.Background(), "small:1b")
	if err != nil {
		t.Fatalf("Acquire(small:1b): %v", err)
	}
	lease.Release()
	if _, err := d.VRAM().Acquire(context.Background(), "big:70b"); !errors.Is(err, talos.ErrOOMGPU) {
		t.Fatalf("Acquire(big:70b) with 24 GB and a 30 GB need: %v, want T102", err)
	}
	if _, err := d.VRAM().Acquire(context.Background(), "coder"); err == nil {
		t.Fatal("Acquire of a model not in TALOS_VRAM_MODELS succeeded")
	}
}

// A CPU-only machine: the gpu step and check are ok with NoGPUDetail, the
// boot is not degraded, and there is no mutex even with Ollama configured.
func TestNoGPUIsOKAndArbitrationOff(t *testing.T) {
	for _, kind := range []vram.ProbeKind{vram.ProbeCommandNotFound, vram.ProbeGPUNotFound} {
		t.Run(string(kind), func(t *testing.T) {
			cfg := newHome(t, map[string]string{"TALOS_OLLAMA_URL": fakeOllama(t)})
			opts := fastOpts()
			opts.GPU = failingGPU(kind)
			d := start(t, cfg, opts)
			step, _ := d.Report().Step(daemon.NameGPU)
			if step.Outcome != boot.OK || step.Detail != daemon.NoGPUDetail || d.Report().Degraded {
				t.Fatalf("gpu step %+v (degraded %v)", step, d.Report().Degraded)
			}
			code, h := getHealth(t, d)
			c, ok := h.Checks[daemon.NameGPU]
			if code != 200 || h.Status != health.Healthy || !ok || c.Status != health.StatusOK || c.Detail != "no GPU found: VRAM arbitration off" {
				t.Fatalf("/health %d %s, gpu check %+v (listed %v)", code, h.Status, c, ok)
			}
			if d.VRAM() != nil {
				t.Fatal("a VRAM mutex without a GPU")
			}
			if code, body := getPath(t, d.HealthAddr(), vram.HandlerPath); code != http.StatusNotFound {
				t.Fatalf("%s without a GPU: %d %s", vram.HandlerPath, code, body)
			}
			if _, m := getPath(t, d.HealthAddr(), "/metrics"); strings.Contains(m, "talos_vram_") {
				t.Fatal("VRAM metrics exported without a mutex")
			}
		})
	}
}

// A GPU that is there but cannot be read degrades (warn), without a mutex.
func TestUnreadableGPUDegrades(t *testing.T) {
	cfg := newHome(t, map[string]string{"TALOS_OLLAMA_URL": fakeOllama(t)})
	opts := fastOpts()
	opts.GPU = failingGPU(vram.ProbeDriverError)
	d := start(t, cfg, opts)
	step, _ := d.Report().Step(daemon.NameGPU)
	if step.Outcome != boot.Degraded || !strings.Contains(step.Error, "RESTART_REQUIRED") || !strings.Contains(step.Error, "VRAM arbitration off") {
		t.Fatalf("gpu step %+v", step)
	}
	_, h := getHealth(t, d)
	if c := h.Checks[daemon.NameGPU]; c.Status != health.StatusWarn || !strings.Contains(c.Detail, "DRIVER_ERROR") || h.Status != health.Degraded {
		t.Fatalf("/health %s, gpu check %+v", h.Status, c)
	}
	if d.VRAM() != nil {
		t.Fatal("a VRAM mutex with an unreadable GPU")
	}
}

// A readable GPU without Ollama: the check reports the memory and why
// there is no arbitration; nothing at /vram.
func TestGPUWithoutOllama(t *testing.T) {
	gpu := vramtest.NewGPU(8 * vram.GiB)
	gpu.SetUsed(512 * vram.MiB)
	opts := fastOpts()
	opts.GPU = gpu
	d := start(t, newHome(t, nil), opts)
	_, h := getHealth(t, d)
	c := h.Checks[daemon.NameGPU]
	if c.Status != health.StatusOK || !strings.HasPrefix(c.Detail, "512 MB used of 8192 MB (fake)") || !strings.Contains(c.Detail, "TALOS_OLLAMA_URL unset") {
		t.Fatalf("gpu check %+v", c)
	}
	if code, _ := getPath(t, d.HealthAddr(), vram.HandlerPath); code != http.StatusNotFound || d.VRAM() != nil {
		t.Fatalf("%s answered %d without Ollama", vram.HandlerPath, code)
	}
	// The GPU going away later is reported, not hidden.
	gpu.Fail(&vram.ProbeError{Kind: vram.ProbeTimeout, Source: "fake"})
	_, h = getHealth(t, d)
	if c := h.Checks[daemon.NameGPU]; c.Status != health.StatusWarn || !strings.Contains(c.Detail, "TIMEOUT") {
		t.Fatalf("gpu check after the GPU stopped answering %+v", c)
	}
}

func TestExtraHandlersAreServed(t *testing.T) {
	opts := fastOpts()
	opts.Handlers = map[string]http.Handler{"/skills": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "[]")
	})}
	d := start(t, newHome(t, nil), opts)
	if code, body := getPath(t, d.HealthAddr(), "/skills"); code != 200 || body != "[]" {
		t.Fatalf("/skills: %d %q", code, body)
	}
	opts.Handlers = map[string]http.Handler{"/health": http.NotFoundHandler()}
	d2, _ := daemon.New(newHome(t, nil), opts)
	if err := d2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "own endpoints") {
		t.Fatalf("a handler replacing /health: %v", err)
	}
}
