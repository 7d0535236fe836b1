package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/internal/tlog"
)

// talosCmd runs the CLI in-process with ctx and returns stdout, stderr and
// the error.
func talosCmd(ctx context.Context, args ...string) (string, string, error) {
	root := newRootCmd()
	var out, errOut testenv.LockedBuffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), errOut.String(), err
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// initHome runs `talos init` in a fresh home.
func initHome(t *testing.T) string {
	t.Helper()
	home := filepath.Join(t.TempDir(), "talos")
	if out, _, err := talosCmd(context.Background(), "init", "--home", home); err != nil {
		t.Fatalf("talos init: %v\n%s", err, out)
	}
	return home
}

func waitFile(t *testing.T, path string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear within %v", path, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// `talos init && talos run` in an empty home with no services: ready in
// under 2 s, /health lists every check with the embedded defaults named,
// `talos health` exits 0, and cancelling removes the marker.
func TestRunEndToEndNoServices(t *testing.T) {
	home := initHome(t)
	addr := freeAddr(t)
	marker := filepath.Join(home, boot.ReadyFileName)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		o, e, err := talosCmd(ctx, "run", "--home", home, "--health-addr", addr)
		done <- result{o, e, err}
	}()
	waitFile(t, marker, 5*time.Second)
	took := time.Since(began)
	t.Logf("talos run ready in %v", took)
	if took >= 2*time.Second {
		t.Fatalf("ready in %v, want under 2 s", took)
	}

	r, err := boot.ReadReady(marker)
	if err != nil {
		t.Fatal(err)
	}
	if r.HealthAddr != addr || r.Status != boot.StatusReady {
		t.Fatalf("marker %+v", r)
	}

	out, _, err := talosCmd(context.Background(), "health", "--home", home, "--json")
	if err != nil {
		t.Fatalf("talos health: %v\n%s", err, out)
	}
	var rep health.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
	if rep.Status != health.Healthy {
		t.Fatalf("status %s: %+v", rep.Status, rep.Checks)
	}
	embedded := map[string]string{
		"redis":    "in-process memory store (TALOS_REDIS_URL unset)",
		"postgres": "embedded SQLite (TALOS_POSTGRES_URL unset) at " + filepath.Join(home, "data", "talos.db") + "; schema strikes v2, quarantine v2, rag v2",
		"dream":    "; no cycle has run yet",
		"chroma":   "memories in embedded SQLite (TALOS_POSTGRES_URL unset) at " + filepath.Join(home, "data", "talos.db") + ", collection talos_memory: 0 records",
		"docker":   "not configured",
		"ollama":   "not configured",
	}
	for name, want := range embedded {
		if c := rep.Checks[name]; c.Status != health.StatusOK || !strings.Contains(c.Detail, want) {
			t.Errorf("check %s = %+v, want ok with %q", name, c, want)
		}
	}
	for _, name := range []string{"home", "disk", "memory", "gpu"} {
		if _, ok := rep.Checks[name]; !ok {
			t.Errorf("no %s check", name)
		}
	}

	summary, _, err := talosCmd(context.Background(), "health", "--home", home)
	if err != nil || !strings.Contains(summary, "HEALTHY") || !strings.Contains(summary, "in-process memory store") {
		t.Fatalf("summary: %v\n%s", err, summary)
	}

	cancel()
	select {
	case res := <-done:
		if res.err != nil {
			t.Fatalf("talos run: %v\n%s", res.err, res.errOut)
		}
		if !strings.Contains(res.out, "ready in") || !strings.Contains(res.out, "talos stopped") {
			t.Fatalf("run output:\n%s", res.out)
		}
		if !strings.Contains(res.errOut, `"msg":"boot complete"`) {
			t.Fatalf("run log lacks boot complete:\n%s", res.errOut)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("talos run did not stop")
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("marker survived the shutdown: %v", err)
	}

	// The daemon logged to the tiers: operations in tier 2, its start and
	// stop as audit events in the hash-chained tier 1, which verifies.
	ops, err := os.ReadFile(filepath.Join(home, "logs", "tier2", "ops.log"))
	if err != nil || !strings.Contains(string(ops), `"msg":"boot complete"`) {
		t.Fatalf("tier 2 log: %v\n%s", err, ops)
	}
	audit, err := os.ReadFile(filepath.Join(home, "logs", "tier1", "audit.log"))
	if err != nil || !strings.Contains(string(audit), `"event":"daemon_started"`) || !strings.Contains(string(audit), `"event":"daemon_stopped"`) {
		t.Fatalf("tier 1 log: %v\n%s", err, audit)
	}
	// The genesis skills were admitted by the boot (verified and recorded;
	// without a Docker engine none is offered).
	if !strings.Contains(string(audit), `"event":"genesis_admission"`) || strings.Contains(string(audit), `"event":"genesis_refused"`) {
		t.Fatalf("tier 1 log lacks the genesis admission or refused one:\n%s", audit)
	}
	if out, _, err := talosCmd(context.Background(), "logs", "verify", "--home", home); err != nil {
		t.Fatalf("talos logs verify: %v\n%s", err, out)
	}

	// One correlation ID for the boot: on every tier-2 line up to "boot
	// complete" and on the daemon_started audit line.
	var bootID string
	for _, line := range strings.Split(strings.TrimSpace(string(audit)), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil && m["event"] == "daemon_started" {
			bootID, _ = m[tlog.CorrelationKey].(string)
		}
	}
	if !tlog.ValidCorrelationID(bootID) {
		t.Fatalf("daemon_started audit line has no correlation ID:\n%s", audit)
	}
	bootLines := 0
	for _, line := range strings.Split(string(ops), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("tier 2 line is not JSON: %s", line)
		}
		if m[tlog.CorrelationKey] != bootID {
			t.Errorf("boot line without the boot's correlation ID %s: %s", bootID, line)
		}
		bootLines++
		if m["msg"] == "boot complete" {
			break
		}
	}
	if bootLines < 10 {
		t.Errorf("only %d boot lines in tier 2", bootLines)
	}

	// No daemon now: unreachable is exit 2.
	_, _, err = talosCmd(context.Background(), "health", "--home", home)
	if exitCode(err) != exitHealthUnhealthy || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("health with no daemon: code %d, %v", exitCode(err), err)
	}
}

func TestRunInvalidConfigExits2(t *testing.T) {
	home := initHome(t)
	env := filepath.Join(home, "config", "talos.env")
	if err := os.Chmod(env, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := talosCmd(context.Background(), "run", "--home", home, "--health-addr", freeAddr(t))
	if exitCode(err) != exitRunConfigFailed || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("code %d: %v", exitCode(err), err)
	}
}

func TestRunMissingTreeExits1(t *testing.T) {
	home := initHome(t)
	if err := os.RemoveAll(filepath.Join(home, "skills")); err != nil {
		t.Fatal(err)
	}
	_, _, err := talosCmd(context.Background(), "run", "--home", home, "--health-addr", freeAddr(t))
	if exitCode(err) != exitRunBootFailed || !strings.Contains(err.Error(), `"directories"`) || !strings.Contains(err.Error(), "talos init") {
		t.Fatalf("code %d: %v", exitCode(err), err)
	}
	// The failure marker names the step, and `talos health` reports it.
	_, _, herr := talosCmd(context.Background(), "health", "--home", home)
	if exitCode(herr) != exitHealthUnhealthy || !strings.Contains(herr.Error(), `boot failed at step "directories"`) {
		t.Fatalf("health after failed boot: %d %v", exitCode(herr), herr)
	}
}

// A degraded daemon (a configured Ollama that is down) makes `talos health`
// exit 1, with the failing check named.
func TestHealthDegradedExits1(t *testing.T) {
	home := initHome(t)
	t.Setenv("TALOS_OLLAMA_URL", "http://"+freeAddr(t))
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, _, err := talosCmd(ctx, "run", "--home", home, "--health-addr", addr); done <- err }()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 5*time.Second)
	out, _, err := talosCmd(context.Background(), "health", "--home", home)
	cancel()
	if exitCode(err) != exitHealthDegraded || !strings.Contains(err.Error(), "ollama fail") || !strings.Contains(out, "DEGRADED") {
		t.Fatalf("code %d: %v\n%s", exitCode(err), err, out)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestHealthStaleMarker(t *testing.T) {
	home := initHome(t)
	// A marker left by a process that no longer exists.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("no `true` binary")
	}
	stale := boot.Ready{Status: boot.StatusReady, PID: cmd.Process.Pid, HealthAddr: freeAddr(t)}
	if err := boot.WriteReady(filepath.Join(home, boot.ReadyFileName), stale); err != nil {
		t.Fatal(err)
	}
	_, _, err := talosCmd(context.Background(), "health", "--home", home)
	if exitCode(err) != exitHealthUnhealthy || !strings.Contains(err.Error(), "not running") {
		t.Fatalf("code %d: %v", exitCode(err), err)
	}
}

// The real binary path: SIGTERM, SIGINT or SIGHUP to a `talos run` process
// stops it with exit 0, removes the marker and writes a daemon_stopped
// audit line naming the signal. The test binary re-runs itself as the
// daemon (see TestMain in main_test.go), so no separate build is needed.
func TestRunSIGTERM(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) { testRunStopsOn(t, sig) })
	}
}

func testRunStopsOn(t *testing.T, sig syscall.Signal) {
	home := initHome(t)
	addr := freeAddr(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "TALOS_HELPER_ARGS=run\x1f--home\x1f"+home+"\x1f--health-addr\x1f"+addr)
	var out testenv.LockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	began := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(home, boot.ReadyFileName)
	waitFile(t, marker, 10*time.Second)
	t.Logf("process ready in %v", time.Since(began))
	r, err := boot.ReadReady(marker)
	if err != nil || r.PID != cmd.Process.Pid {
		t.Fatalf("marker %+v (%v), want pid %d", r, err, cmd.Process.Pid)
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	werr := make(chan error, 1)
	go func() { werr <- cmd.Wait() }()
	select {
	case err := <-werr:
		if err != nil {
			t.Fatalf("exit: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("no exit after %v\n%s", sig, out.String())
	}
	if _, err := os.Stat(marker); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("marker survived %v: %v\n%s", sig, err, out.String())
	}
	if !strings.Contains(out.String(), "talos stopped") {
		t.Fatalf("output:\n%s", out.String())
	}
	audit, err := os.ReadFile(filepath.Join(home, layout.LogsTier1, "audit.log"))
	if err != nil || !strings.Contains(string(audit), `"daemon_stopped"`) || !strings.Contains(string(audit), `"signal":"`+sig.String()+`"`) {
		t.Fatalf("no daemon_stopped audit line naming %v (%v):\n%s", sig, err, audit)
	}
}

// startRun runs `talos run` for home in the background until the test
// ends, waits for its ready marker and returns the health address and the
// run's stdout so far (read after stop).
func startRun(t *testing.T, home string) (addr string, stop func() string) {
	t.Helper()
	addr = freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		out, errOut string
		err         error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		o, e, err := talosCmd(ctx, "run", "--home", home, "--health-addr", addr)
		done <- result{o, e, err}
	}()
	waitFile(t, filepath.Join(home, boot.ReadyFileName), 5*time.Second)
	t.Logf("talos run ready in %v", time.Since(began))
	var once sync.Once
	var out string
	stop = func() string {
		once.Do(func() {
			cancel()
			select {
			case res := <-done:
				if res.err != nil {
					t.Errorf("talos run: %v\n%s", res.err, res.errOut)
				}
				out = res.out
			case <-time.After(10 * time.Second):
				t.Error("talos run did not stop")
			}
		})
		return out
	}
	t.Cleanup(func() { stop() })
	return addr, stop
}

func healthJSON(t *testing.T, home string) health.Report {
	t.Helper()
	out, _, err := talosCmd(context.Background(), "health", "--home", home, "--json")
	var rep health.Report
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil {
		t.Fatalf("talos health --json: %v / %v\n%s", err, jerr, out)
	}
	return rep
}

// A CPU-only machine (no NVML, no nvidia-smi): `talos run` is healthy, its
// always-listed gpu check is ok with "no GPU found: VRAM arbitration off",
// and `talos gpu status` (address from .ready) says why there is no mutex.
func TestRunNoGPU(t *testing.T) {
	skipIfRealNVML(t)
	withFakeSMI(t, "") // PATH without nvidia-smi
	home := initHome(t)
	addr, stop := startRun(t, home)
	rep := healthJSON(t, home)
	c, ok := rep.Checks["gpu"]
	if !ok || c.Status != health.StatusOK || c.Detail != "no GPU found: VRAM arbitration off" || rep.Status != health.Healthy {
		t.Fatalf("status %s, gpu check %+v (listed %v)", rep.Status, c, ok)
	}
	out, err := runGPUCmd(t, "--home", home)
	if exitCode(err) != exitNoGPU {
		t.Fatalf("gpu status: %v (exit %d), want exit %d\n%s", err, exitCode(err), exitNoGPU, out)
	}
	want := "VRAM mutex: unknown: the daemon at " + addr + " has no VRAM mutex (/vram answered 404): no GPU found: VRAM arbitration off"
	if !strings.Contains(out, want) {
		t.Fatalf("gpu status output lacks %q:\n%s", want, out)
	}
	if runOut := stop(); !strings.Contains(runOut, "gpu: no GPU found: VRAM arbitration off") {
		t.Fatalf("talos run does not tell the operator about the GPU:\n%s", runOut)
	}
}

// A GPU (a fake nvidia-smi: NVML finds no library here and Detect falls
// back to it) and a configured Ollama: `talos run` builds the VRAM mutex,
// and `talos gpu status` finds the daemon through .ready and shows the
// mutex's state; /health's gpu check and /metrics show it too.
func TestRunGPUStatusFromDaemon(t *testing.T) {
	skipIfRealNVML(t)
	withFakeSMI(t, "2048, 16384")
	ollama := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/version" {
			_, _ = io.WriteString(w, `{"version":"0.34.4"}`)
			return
		}
		http.NotFound(w, r)
	}))
	defer ollama.Close()
	t.Setenv("TALOS_OLLAMA_URL", ollama.URL)
	home := initHome(t)
	addr, stop := startRun(t, home)

	out, err := runGPUCmd(t, "--home", home)
	if err != nil {
		t.Fatalf("gpu status: %v\n%s", err, out)
	}
	for _, want := range []string{
		"GPU 0 (nvidia-smi): 2.0 GB used of 16.0 GB, 14.0 GB free",
		"VRAM mutex (daemon at " + addr + "): idle, model none, 0 leases, 0 waiting",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("gpu status output lacks %q:\n%s", want, out)
		}
	}
	rep := healthJSON(t, home)
	if c := rep.Checks["gpu"]; c.Status != health.StatusOK || c.Detail != "2048 MB used of 16384 MB (nvidia-smi); VRAM mutex idle, model none, 0 leases, 0 waiting" {
		t.Fatalf("gpu check %+v", c)
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `talos_vram_state{state="idle"} 1`) {
		t.Fatalf("/metrics lacks the VRAM mutex:\n%s", metrics)
	}
	runOut := stop()
	if !strings.Contains(runOut, "gpu: GPU 2048 MB used of 16384 MB (nvidia-smi); VRAM mutex on for models qwen2.5-coder:7b, qwen2.5vl:7b (acquire timeout 30s)") {
		t.Fatalf("talos run output:\n%s", runOut)
	}
}

// TestRunReportsTamperedAuditChain pins that a tier-1 chain edited between
// two runs is noticed at boot and shown in /health (audit_chain fails, the
// daemon is degraded), while an intact one is ok.
func TestRunReportsTamperedAuditChain(t *testing.T) {
	home := initHome(t)
	_, stop := startRun(t, home)
	if c := healthJSON(t, home).Checks[auditChainName]; c.Status != health.StatusOK {
		t.Fatalf("intact chain: %+v", c)
	}
	stop()
	path := filepath.Join(home, layout.LogsTier1, "audit.log")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(data), `"daemon_started"`, `"daemon_stalled"`, 1)
	if edited == string(data) {
		t.Fatalf("no daemon_started line to edit:\n%s", data)
	}
	if err := os.WriteFile(path, []byte(edited), 0o640); err != nil {
		t.Fatal(err)
	}
	startRun(t, home)
	rep := healthJSON(t, home)
	c := rep.Checks[auditChainName]
	if c.Status != health.StatusFail || !strings.Contains(c.Detail, "not intact") || rep.Status == health.Healthy {
		t.Fatalf("tampered chain: status %s, check %+v", rep.Status, c)
	}
}
