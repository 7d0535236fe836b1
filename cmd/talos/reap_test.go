package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
)

// reapHelperEnv holds the JSON argument list when the test binary re-executes
// itself as `talos reap` (so the reaper's process-wide state — subreaper,
// wait4 ownership, signal handlers — never touches this test process).
const reapHelperEnv = "TALOS_REAP_HELPER_ARGS"

func TestReapHelperProcess(t *testing.T) {
	raw := os.Getenv(reapHelperEnv)
	if raw == "" {
		return // not a test: the body of the re-executed `talos reap` helper
	}
	var args []string
	if err := json.Unmarshal([]byte(raw), &args); err != nil {
		syscall.Exit(99)
	}
	root := newRootCmd()
	root.SetArgs(append([]string{"reap", "--"}, args...))
	code := 0
	if err := root.Execute(); err != nil {
		os.Stderr.WriteString("talos: " + err.Error() + "\n")
		code = exitCode(err)
	}
	// syscall.Exit, not os.Exit: the testing package turns os.Exit(0)
	// inside a test into a failure.
	syscall.Exit(code)
}

// reapCmd returns a command running `talos reap -- args`, optionally inside
// a new PID namespace (talos is PID 1 there).
func reapCmd(t *testing.T, pidns bool, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := []string{exe, "-test.run=^TestReapHelperProcess$"}
	if pidns {
		argv = append([]string{"unshare", "--pid", "--fork", "--mount-proc"}, argv...)
	}
	b, _ := json.Marshal(args)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), reapHelperEnv+"="+string(b))
	return cmd
}

func exitOf(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0
}

func TestReapExitCodes(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"true"}, 0},
		{[]string{"sh", "-c", "exit 3"}, 3},
		{[]string{"sh", "-c", "kill -KILL $$"}, 137},
		{[]string{"/nonexistent/talos-no-such-cmd"}, 127},
	} {
		out, err := reapCmd(t, false, tt.args...).CombinedOutput()
		if got := exitOf(t, err); got != tt.want {
			t.Errorf("talos reap -- %v: exit %d, want %d (%s)", tt.args, got, tt.want, out)
		}
	}
}

func TestReapNeedsACommand(t *testing.T) {
	root := newRootCmd()
	root.SetArgs([]string{"reap"})
	root.SetOut(&strings.Builder{})
	root.SetErr(&strings.Builder{})
	if err := root.Execute(); err == nil {
		t.Error("talos reap without a command succeeded")
	}
}

// In a PID namespace talos is PID 1: SIGTERM sent to it reaches the child's
// group, and talos exits with the child's code.
func TestReapAsPID1InPIDNamespace(t *testing.T) {
	testenv.PIDNamespace(t) // skips, or fails under TALOS_TEST_REQUIRE_SERVICES=1
	for _, tt := range []struct {
		name   string
		script string
		want   int
	}{
		// The child traps TERM. Before that, a grandchild's background sleep is
		// orphaned (its parent exits), so it is re-parented to PID 1: talos
		// must reap it when it ends, or it stays a zombie child of talos.
		{"trap", `sh -c 'sleep 0.05 &'; sleep 0.4; trap 'exit 42' TERM; echo ready $PPID; while :; do sleep 0.02; done`, 42},
		{"killed", `echo ready $PPID; exec sleep 30`, 128 + int(syscall.SIGTERM)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := reapCmd(t, true, "sh", "-c", tt.script)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil {
				t.Fatalf("child never got ready: %v (stderr %s)", err, stderr.String())
			}
			// Inside the namespace the child's parent, talos, is PID 1.
			if f := strings.Fields(line); len(f) != 2 || f[1] != "1" {
				t.Errorf("child reports %q, want parent PID 1 (talos is init of the namespace)", line)
			}
			talos := childOf(t, cmd.Process.Pid)
			for _, c := range children(talos) {
				if b, err := os.ReadFile("/proc/" + strconv.Itoa(c) + "/stat"); err == nil && strings.Contains(string(b), ") Z ") {
					t.Errorf("talos (PID 1) has an unreaped zombie child %d: %s", c, b)
				}
			}
			if err := syscall.Kill(talos, syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err := <-done:
				if got := exitOf(t, err); got != tt.want {
					t.Errorf("exit %d, want %d (stderr %s)", got, tt.want, stderr.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatal("talos reap did not exit after SIGTERM")
			}
		})
	}
}

// children returns the child PIDs of pid.
func children(pid int) []int {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if c, err := strconv.Atoi(f); err == nil {
			out = append(out, c)
		}
	}
	return out
}

// childOf returns the only child of pid (unshare --fork's child: talos).
func childOf(t *testing.T, pid int) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
		if err == nil {
			if f := strings.Fields(string(b)); len(f) == 1 {
				c, _ := strconv.Atoi(f[0])
				return c
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no child of %d found", pid)
	return 0
}
