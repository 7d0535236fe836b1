package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/boot"
)

// procStatusKB reads one kB field (VmRSS, VmHWM) of /proc/PID/status.
func procStatusKB(pid int, field string) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// BenchmarkDaemonIdleRSS builds the talos binary, boots `talos run` on
// embedded defaults (no Redis, PostgreSQL, Chroma, Docker or model; the
// dashboard on a free port), lets it idle for 10 s and reports its resident
// set (the largest of ten samples, one a second) and the peak since start
// (VmHWM), in MB (goal < 150 MB idle). It runs only with TALOS_OPS_BENCH=1:
//
//	TALOS_OPS_BENCH=1 go test -run '^$' -bench DaemonIdleRSS -benchtime 1x ./cmd/talos/
func BenchmarkDaemonIdleRSS(b *testing.B) {
	if os.Getenv("TALOS_OPS_BENCH") != "1" {
		b.Skip("set TALOS_OPS_BENCH=1 to run the operations benchmarks (docs/benchmarks.md)")
	}
	bin := buildTalos(b, b.TempDir())
	var idle, peak int
	for b.Loop() {
		home := filepath.Join(b.TempDir(), "home")
		if out, err := exec.Command(bin, "init", "--home", home).CombinedOutput(); err != nil {
			b.Fatalf("init: %v\n%s", err, out)
		}
		web := freeAddr(&testing.T{})
		cmd := exec.Command(bin, "run", "--home", home, "--health-addr", freeAddr(&testing.T{}), "--set", "WEB_PORT="+web[strings.LastIndex(web, ":")+1:])
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		marker := filepath.Join(home, boot.ReadyFileName)
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				cmd.Wait()
				b.Fatalf("not ready in 30 s:\n%s", out.String())
			}
		}
		for range 10 {
			time.Sleep(time.Second) // idle: what it holds with nothing to do
			rss, err := procStatusKB(cmd.Process.Pid, "VmRSS")
			if err != nil {
				b.Fatal(err)
			}
			idle = max(idle, rss)
		}
		hwm, err := procStatusKB(cmd.Process.Pid, "VmHWM")
		if err != nil {
			b.Fatal(err)
		}
		peak = max(peak, hwm)
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			b.Fatalf("exit: %v\n%s", err, out.String())
		}
	}
	b.ReportMetric(float64(idle)/1024, "idle-rss-MB")
	b.ReportMetric(float64(peak)/1024, "peak-rss-MB")
}
