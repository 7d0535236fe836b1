package dream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// The cross-process tests re-run this test binary as a child that runs a
// cycle (TALOS_DREAM_CHILD names what it does) in TALOS_DREAM_DIR.
const (
	envChild = "TALOS_DREAM_CHILD"
	envDir   = "TALOS_DREAM_DIR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(envChild); mode != "" {
		os.Exit(child(mode, os.Getenv(envDir)))
	}
	os.Exit(m.Run())
}

func child(mode, dir string) int {
	s, err := New(Config{StateDir: dir, Location: time.UTC}, nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	switch mode {
	case "hold": // hold the lock until killed
		_ = s.Register(Phase{Name: "hold", Timeout: time.Hour, Run: func(ctx context.Context) (PhaseResult, error) {
			fmt.Println("running")
			<-ctx.Done()
			return PhaseResult{}, nil
		}})
	case "crash": // die with SIGKILL in the middle of phase b
		_ = s.Register(Phase{Name: "a", Timeout: time.Minute, Run: func(context.Context) (PhaseResult, error) {
			return did(1), nil
		}})
		_ = s.Register(Phase{Name: "b", Timeout: time.Minute, Run: func(ctx context.Context) (PhaseResult, error) {
			if err := SaveProgress(ctx, 7); err != nil {
				return PhaseResult{}, err
			}
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}})
		_ = s.Register(Phase{Name: "c", Timeout: time.Minute, Run: func(context.Context) (PhaseResult, error) {
			return did(1), nil
		}})
	}
	if _, err := s.RunNow(context.Background(), "child "+mode); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func startChild(t *testing.T, mode, dir string) (*exec.Cmd, *bufio.Reader) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChild+"="+mode, envDir+"="+dir)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewReader(out)
}

func TestLockDiesWithItsHolder(t *testing.T) {
	dir := t.TempDir()
	cmd, out := startChild(t, "hold", dir)
	line, err := out.ReadString('\n')
	if err != nil || line != "running\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	s := newTest(t, Config{StateDir: dir}, nil)
	mustRegister(t, s, Phase{Name: "p", Timeout: time.Minute, Run: func(context.Context) (PhaseResult, error) { return did(1), nil }})
	_, err = s.RunNow(t.Context(), "")
	if !errors.Is(err, talos.ErrMaintenanceBusy) || !strings.Contains(err.Error(), "held by pid "+strconv.Itoa(cmd.Process.Pid)) {
		t.Fatalf("RunNow while another process runs a cycle = %v, want T011 naming pid %d", err, cmd.Process.Pid)
	}
	// The holder crashes: the kernel drops its lock.
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	rep, err := s.RunNow(t.Context(), "")
	if err != nil || rep.Outcome != OutcomeOK {
		t.Fatalf("RunNow after the holder died = %v, %v", rep, err)
	}
}

func TestKilledCycleResumesFromItsCheckpoint(t *testing.T) {
	dir := t.TempDir()
	cmd, _ := startChild(t, "crash", dir)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("child ended with %v, want killed by SIGKILL", err)
	}
	var r runs
	s := newTest(t, Config{StateDir: dir}, nil)
	mustRegister(t, s,
		r.phase("a", time.Minute, did(1), nil),
		Phase{Name: "b", Timeout: time.Minute, Run: func(ctx context.Context) (PhaseResult, error) {
			r.add("b")
			var n int64
			ok, err := LoadProgress(ctx, &n)
			if err != nil || !ok {
				return PhaseResult{}, fmt.Errorf("no progress saved before the crash: %v", err)
			}
			return did(n), nil
		}},
		r.phase("c", time.Minute, did(1), nil),
	)
	rep, err := s.Resume(t.Context())
	if err != nil || rep == nil {
		t.Fatalf("Resume = %v, %v", rep, err)
	}
	if rep.Resumed != 1 || rep.Outcome != OutcomeOK || rep.Kind != KindOperator || rep.Reason != "child crash" {
		t.Errorf("report: resumed %d outcome %s kind %s reason %q", rep.Resumed, rep.Outcome, rep.Kind, rep.Reason)
	}
	if len(r.get("a")) != 0 || len(r.get("b")) != 1 || len(r.get("c")) != 1 {
		t.Errorf("runs after resume a=%d b=%d c=%d, want 0 (done before the crash), 1, 1", len(r.get("a")), len(r.get("b")), len(r.get("c")))
	}
	if p := rep.Phases[0]; p.Name != "a" || p.Status != StatusOK || p.Counters["items"] != 1 {
		t.Errorf("a's report from before the crash = %+v", p)
	}
	if p := rep.Phases[1]; p.Counters["items"] != 7 {
		t.Errorf("b = %+v, want the progress (7) it saved before the crash", p)
	}
}
