package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/boot"
)

// BenchmarkShutdownLatency builds the talos binary, boots it on embedded
// defaults, and times SIGTERM → exit with nothing in flight (goal < 1 s).
// It runs only with TALOS_OPS_BENCH=1:
//
//	TALOS_OPS_BENCH=1 go test -run '^$' -bench ShutdownLatency -benchtime 5x ./cmd/talos/
func BenchmarkShutdownLatency(b *testing.B) {
	if os.Getenv("TALOS_OPS_BENCH") != "1" {
		b.Skip("set TALOS_OPS_BENCH=1 to run the operations benchmarks (docs/benchmarks.md)")
	}
	bin := filepath.Join(b.TempDir(), "talos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build: %v\n%s", err, out)
	}
	var worst time.Duration
	for b.Loop() {
		b.StopTimer()
		home := filepath.Join(b.TempDir(), "home")
		if out, err := exec.Command(bin, "init", "--home", home).CombinedOutput(); err != nil {
			b.Fatalf("init: %v\n%s", err, out)
		}
		cmd := exec.Command(bin, "run", "--home", home, "--health-addr", freeAddr(&testing.T{}))
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		marker := filepath.Join(home, boot.ReadyFileName)
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(marker); err == nil {
				break
			}
			if time.Now().After(deadline) {
				cmd.Process.Kill()
				b.Fatal("not ready in 20 s")
			}
		}
		b.StartTimer()
		start := time.Now()
		cmd.Process.Signal(syscall.SIGTERM)
		err := cmd.Wait()
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatalf("exit: %v", err)
		}
		worst = max(worst, took)
		b.StartTimer()
	}
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
}
