package reaper_test

import (
	"os/exec"
	"sync"
	"testing"

	"github.com/talos-ironclad/talos/reaper"
)

// BenchmarkExecCmdRun is the baseline: os/exec with no reaper.
func BenchmarkExecCmdRun(b *testing.B) {
	for b.Loop() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommandRun is the same child through the Reaper (SIGCHLD,
// wait4 loop, hand-over to the Command).
func BenchmarkCommandRun(b *testing.B) {
	r, err := reaper.New(reaper.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	for b.Loop() {
		if err := r.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCommandRunParallel runs 8 children at a time through the Reaper.
func BenchmarkCommandRunParallel(b *testing.B) {
	r, err := reaper.New(reaper.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	b.SetParallelism(4) // 4 × GOMAXPROCS(2) = 8 goroutines
	var mu sync.Mutex
	var failed error
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Command("/bin/true").Run(); err != nil {
				mu.Lock()
				failed = err
				mu.Unlock()
			}
		}
	})
	if failed != nil {
		b.Fatal(failed)
	}
}
