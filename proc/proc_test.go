package proc_test

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/proc"
	"github.com/talos-ironclad/talos/proc/proctest"
)

func TestOSConformance(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Fatalf("the OS conformance run needs sh: %v", err)
	}
	proctest.Run(t, func(t *testing.T) (proc.Processes, proctest.Spawner) {
		return proc.OS(), proctest.Start
	})
}

func TestFakeProcsConformance(t *testing.T) {
	proctest.Run(t, func(t *testing.T) (proc.Processes, proctest.Spawner) {
		p := proctest.NewProcs()
		next := 100
		return p, func(t *testing.T, ignoreTerm bool) int {
			next++
			p.Add(next, "fake", 1, ignoreTerm)
			return next
		}
	})
}

func TestOSSelf(t *testing.T) {
	st, err := proc.OS().Stat(os.Getpid())
	if err != nil || st.PID != os.Getpid() || st.PPID != os.Getppid() || st.StartTime == 0 {
		t.Fatalf("Stat(self) = %+v, %v", st, err)
	}
	if ok, err := proc.OS().Reap(os.Getpid()); ok || err != nil {
		t.Fatalf("Reap(self) = %v, %v; we are not our own child", ok, err)
	}
}

func TestFind(t *testing.T) {
	self := os.Getpid()
	pids, err := proc.Find(func(argv []string) bool { return len(argv) > 0 && argv[0] == os.Args[0] })
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(pids, self) {
		t.Fatalf("Find did not find this test binary (pid %d) in %v", self, pids)
	}
	// The child's sh execs sleep right after it says it is ready.
	child := proctest.Start(t, false)
	isSleep := func(argv []string) bool { return slices.Equal(argv, []string{"sleep", "30"}) }
	for deadline := time.Now().Add(5 * time.Second); ; {
		pids, err = proc.Find(isSleep)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(pids, child) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Find did not find the child %d (sleep 30) in %v", child, pids)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
