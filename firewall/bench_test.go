package firewall_test

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/firewall"
)

func benchScan(b *testing.B, src firewall.Source, size int) {
	fw := newFW(b, firewall.Config{HistorySize: -1})
	text := longBenign(b, 3, size)
	ctx := context.Background()
	in := firewall.Input{Text: text, Source: src}
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for b.Loop() {
		if _, err := fw.Scan(ctx, in); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// cpuTime is the process's user+system CPU time. On a shared machine the
// wall-clock ns/op includes waiting for a core; cpu-ns/op does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkScan4KBUser(b *testing.B)  { benchScan(b, firewall.SourceUser, 4096) }
func BenchmarkScan4KBTool(b *testing.B)  { benchScan(b, firewall.SourceTool, 4096) }
func BenchmarkScan64KBTool(b *testing.B) { benchScan(b, firewall.SourceTool, 64<<10) }

func BenchmarkNormalize4KB(b *testing.B) {
	text := longBenign(b, 3, 4096)
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	cpu0 := cpuTime()
	for b.Loop() {
		firewall.Normalize(text)
	}
	reportCPU(b, cpu0)
}
