package reaper_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/proc"
	"github.com/talos-ironclad/talos/reaper"
)

// helperEnv selects a helper mode when the test binary re-executes itself:
// settings that are process-wide (PR_SET_CHILD_SUBREAPER, signal handlers)
// then never touch the main test process.
const helperEnv = "REAPER_TEST_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(runHelper(mode, os.Args[1:]))
	}
	os.Exit(m.Run())
}

func runHelper(mode string, args []string) int {
	switch mode {
	case "orphans":
		return helperOrphans()
	case "init":
		// args after "--"
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		code, err := reaper.RunInit(context.Background(), reaper.InitConfig{Args: args, Stdout: os.Stdout, Stderr: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper init:", err)
		}
		return code
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 2
}

// helperOrphans runs as a subreaper: its child starts a background grandchild
// and exits, so the grandchild is re-parented to us; the Reaper must reap it.
// Prints "OK <grandchild pid> <code>" on success.
func helperOrphans() int {
	r, err := reaper.New(reaper.Config{Subreaper: true}, nil)
	if err != nil {
		fmt.Println("FAIL new:", err)
		return 1
	}
	defer r.Close()
	var out bytes.Buffer
	c := r.Command("sh", "-c", "sleep 0.2 & echo $!; exit 0")
	c.Cmd.Stdout = &out
	if err := c.Run(); err != nil {
		fmt.Println("FAIL child:", err)
		return 1
	}
	gpid, err := strconv.Atoi(strings.TrimSpace(out.String()))
	if err != nil {
		fmt.Printf("FAIL grandchild pid %q\n", out.String())
		return 1
	}
	// The grandchild is now ours (we are its subreaper).
	st, err := proc.OS().Stat(gpid)
	if err == nil && st.PPID != os.Getpid() {
		fmt.Printf("FAIL grandchild %d has parent %d, want us (%d)\n", gpid, st.PPID, os.Getpid())
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := r.WaitPID(ctx, gpid)
	if err != nil {
		fmt.Println("FAIL waiting for the orphan:", err)
		return 1
	}
	// Reaped: no zombie left under that PID.
	if st, err := proc.OS().Stat(gpid); err == nil && st.PPID == os.Getpid() {
		fmt.Printf("FAIL orphan %d still exists after reaping: %+v\n", gpid, st)
		return 1
	}
	if r.Stats().Unknown < 1 {
		fmt.Println("FAIL stats:", r.Stats())
		return 1
	}
	fmt.Printf("OK %d %d\n", gpid, e.Code())
	return 0
}

func helperCmd(t *testing.T, mode string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, append([]string{"-test.run=^$"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	return cmd
}

func newReaper(t *testing.T, cfg reaper.Config) *reaper.Reaper {
	t.Helper()
	r, err := reaper.New(cfg, nil)
	if err != nil {
		t.Fatalf("reaper.New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestOrphansAreReapedAsSubreaper(t *testing.T) {
	out, err := helperCmd(t, "orphans").CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), "OK ") {
		t.Fatalf("helper output: %s", out)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[2] != "0" {
		t.Errorf("orphan exit: %q, want code 0 (sleep 0.2 ends normally)", out)
	}
}

// Many children started at once, with different exit codes and outputs: each
// Wait must get its own status (never ECHILD, never another child's), while
// the Reaper reaps them all concurrently.
func TestConcurrentCommandsGetTheirOwnStatus(t *testing.T) {
	r := newReaper(t, reaper.Config{})
	const n = 60
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var c *reaper.Command
			want := i % 7
			switch {
			case i%10 == 9: // killed by a signal: 128+9
				c = r.Command("sh", "-c", "kill -9 $$")
				want = 137
			default:
				c = r.Command("sh", "-c", fmt.Sprintf("echo child-%d; exit %d", i, want))
			}
			var out bytes.Buffer
			c.Cmd.Stdout = &out
			if err := c.Start(); err != nil {
				errs <- fmt.Errorf("child %d: Start: %v", i, err)
				return
			}
			select {
			case <-c.Done():
			case <-time.After(20 * time.Second):
				errs <- fmt.Errorf("child %d (pid %d): status lost", i, c.PID())
				return
			}
			err := c.Wait()
			var code int
			var ee *reaper.ExitError
			switch {
			case err == nil:
			case errors.As(err, &ee):
				code = ee.ExitCode()
			default:
				errs <- fmt.Errorf("child %d: Run: %v", i, err)
				return
			}
			if errors.Is(err, syscall.ECHILD) {
				errs <- fmt.Errorf("child %d: ECHILD", i)
			}
			if code != want {
				errs <- fmt.Errorf("child %d: exit code %d, want %d", i, code, want)
			}
			if want != 137 && out.String() != fmt.Sprintf("child-%d\n", i) {
				errs <- fmt.Errorf("child %d: stdout %q (output joined before Wait returned?)", i, out.String())
			}
			if e, ok := c.Exit(); !ok || e.PID != c.PID() {
				errs <- fmt.Errorf("child %d: Exit() = %+v, %v; want pid %d", i, e, ok, c.PID())
			}
		}()
	}
	// Meanwhile, children nobody registered exit too (orphans, a library's
	// children): their statuses must not be handed to a Command.
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 99"}, &os.ProcAttr{}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st := r.Stats()
	if st.Delivered < n || st.Running != 0 {
		t.Errorf("stats %+v: want %d delivered, 0 running", st, n)
	}
}

// A child that exits at once cannot lose its status to the reaper loop:
// Start holds the delivery lock across the fork.
func TestImmediateExitIsNotLost(t *testing.T) {
	r := newReaper(t, reaper.Config{})
	for i := range 200 {
		c := r.Command("true")
		if i%2 == 1 {
			c = r.Command("false")
		}
		err := runWithin(t, c, 10*time.Second)
		if (i%2 == 0) != (err == nil) {
			t.Fatalf("run %d: err %v", i, err)
		}
	}
}

// runWithin runs c and fails the test if its status never arrives (a lost
// status would otherwise hang the test until the global timeout).
func runWithin(t *testing.T, c *reaper.Command, d time.Duration) error {
	t.Helper()
	if err := c.Start(); err != nil {
		return err
	}
	select {
	case <-c.Done():
		return c.Wait()
	case <-time.After(d):
		t.Fatalf("pid %d: no exit status after %v: the reaper lost it", c.PID(), d)
		return nil
	}
}

func TestOnlyOneReaperPerProcess(t *testing.T) {
	newReaper(t, reaper.Config{})
	if r2, err := reaper.New(reaper.Config{}, nil); err == nil {
		r2.Close()
		t.Fatal("a second Reaper started while one runs; two wait4 owners steal each other's children")
	}
}

func TestReaperCanBeReopenedAfterClose(t *testing.T) {
	r, err := reaper.New(reaper.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	r.Close() // idempotent
	if err := r.Command("true").Start(); err == nil {
		t.Error("Start on a closed reaper succeeded")
	}
	r2 := newReaper(t, reaper.Config{})
	if err := r2.Command("true").Run(); err != nil {
		t.Errorf("after reopening: %v", err)
	}
}

// waitUntil polls cond (a state the test waits for, never a "nothing
// happened" check) and fails after d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(d); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", d, what)
		}
		time.Sleep(time.Millisecond)
	}
}

// cancelled is a context that is already done: WaitPID with it only looks
// up a status already kept, without waiting.
func cancelled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// TestWaitPIDForeignChild covers both orders of a child started behind the
// reaper's back (as a library might): reaped before WaitPID asks (the
// status is kept) and asked before it exits (the status is handed over).
// Each order is forced, not left to the scheduler.
func TestWaitPIDForeignChild(t *testing.T) {
	r := newReaper(t, reaper.Config{})
	check := func(t *testing.T, p *os.Process, e reaper.Exit, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("WaitPID: %v", err)
		}
		if e.PID != p.Pid || e.Code() != 7 {
			t.Errorf("WaitPID = %+v (code %d), want pid %d code 7", e, e.Code(), p.Pid)
		}
		// Its own os.Process.Wait now fails (the reaper owns wait4), which
		// is why children must go through Command.
		if _, err := p.Wait(); err == nil {
			t.Error("os.Process.Wait after the reaper reaped: want an error (ECHILD)")
		}
		// A status is handed out once.
		if _, err := r.WaitPID(cancelled(), p.Pid); !errors.Is(err, context.Canceled) {
			t.Errorf("second WaitPID = %v, want no status kept", err)
		}
	}

	t.Run("ReapedBeforeAsked", func(t *testing.T) {
		before := r.Stats().Unknown
		p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "exit 7"}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, 5*time.Second, "the reaper to keep the foreign status", func() bool { return r.Stats().Unknown > before })
		e, err := r.WaitPID(cancelled(), p.Pid) // kept: no wait needed
		check(t, p, e, err)
	})

	t.Run("AskedBeforeExit", func(t *testing.T) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pr.Close()
		// The child cannot exit before the pipe is closed.
		p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", "read x; exit 7"}, &os.ProcAttr{Files: []*os.File{pr, os.Stdout, os.Stderr}})
		if err != nil {
			t.Fatal(err)
		}
		type res struct {
			e   reaper.Exit
			err error
		}
		got := make(chan res, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			e, err := r.WaitPID(ctx, p.Pid)
			got <- res{e, err}
		}()
		waitUntil(t, 5*time.Second, "WaitPID to register", func() bool { return r.Waiters(p.Pid) == 1 })
		pw.Close() // now let it exit
		g := <-got
		check(t, p, g.e, g.err)
	})
}

func TestUnknownStatusesAreBounded(t *testing.T) {
	r := newReaper(t, reaper.Config{MaxUnknownStatuses: 3})
	var pids []int
	for range 6 {
		p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, p.Pid)
		waitUntil(t, 5*time.Second, "the status to be kept", func() bool { return r.Stats().Unknown >= uint64(len(pids)) })
	}
	// Every status has arrived, so a lookup that does not wait is exact.
	if _, err := r.WaitPID(cancelled(), pids[0]); err == nil {
		t.Error("the oldest status was kept beyond MaxUnknownStatuses")
	}
	if e, err := r.WaitPID(cancelled(), pids[5]); err != nil || e.Code() != 0 {
		t.Errorf("the newest status: %+v, %v", e, err)
	}
}

func TestCommandContextKills(t *testing.T) {
	r := newReaper(t, reaper.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	c := r.CommandContext(ctx, "sleep", "30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	cancel()
	err := c.Wait()
	var ee *reaper.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGKILL) {
		t.Fatalf("Wait = %v, want killed (137)", err)
	}
	if err := c.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after exit = %v, want os.ErrProcessDone", err)
	}
}

func TestWrapRejectsExecCommandContext(t *testing.T) {
	r := newReaper(t, reaper.Config{})
	c := r.Wrap(exec.CommandContext(context.Background(), "true"))
	if err := c.Start(); err == nil {
		t.Fatal("Start accepted an exec.CommandContext command")
	}
	c = r.Command("true")
	if err := c.Wait(); err == nil {
		t.Error("Wait before Start succeeded")
	}
	if err := c.Run(); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err == nil {
		t.Error("second Start succeeded")
	}
}

func TestStartErrorsPassThrough(t *testing.T) {
	r := newReaper(t, reaper.Config{})
	err := r.Command("/nonexistent/talos-no-such-binary").Start()
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Start of a missing binary = %v, want ErrNotExist", err)
	}
	// exec fails after the fork (ENOEXEC): os/exec waits for that child
	// itself while the Reaper may reap it too; neither may hang.
	bad := t.TempDir() + "/garbage"
	if err := os.WriteFile(bad, []byte{0x7f, 'E', 'L', 'F', 0, 0, 0}, 0o755); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := r.Command(bad).Start(); !errors.Is(err, syscall.ENOEXEC) {
			t.Fatalf("Start of a non-executable file = %v, want ENOEXEC", err)
		}
	}
	if err := runWithin(t, r.Command("true"), 10*time.Second); err != nil {
		t.Errorf("after failed starts: %v", err)
	}
}

// Idle reaping with real processes: an idle child that ignores SIGTERM is
// killed after the grace (137), one that does not ends with SIGTERM (143).
// (That Touch postpones reaping, and the exact 300 s / 10 s policy, are
// tested on synctest's clock in idle_test.go: with real processes whether
// a toucher keeps up is left to the scheduler.)
func TestIdleReapingRealProcess(t *testing.T) {
	r := newReaper(t, reaper.Config{Idle: reaper.IdleConfig{Timeout: 40 * time.Millisecond, KillGrace: 40 * time.Millisecond}})
	stubborn := r.Command("sh", "-c", "trap '' TERM; while :; do sleep 0.01; done")
	stubborn.WatchIdle = true
	polite := r.Command("sleep", "30")
	polite.WatchIdle = true
	for _, c := range []*reaper.Command{stubborn, polite} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	var ee *reaper.ExitError
	if err := stubborn.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 137 {
		t.Errorf("stubborn idle process: %v, want SIGKILL (137)", err)
	}
	if err := polite.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 143 {
		t.Errorf("polite idle process: %v, want SIGTERM (143)", err)
	}
	if len(r.Registered()) != 0 {
		t.Errorf("Registered after both exited: %+v", r.Registered())
	}
}

func TestRunInitForwardsSignalAndExitCode(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   int
	}{
		{"trap", `trap 'exit 42' TERM; echo ready; while :; do sleep 0.02; done`, 42},
		{"killed", `echo ready; exec sleep 30`, 128 + int(syscall.SIGTERM)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := helperCmd(t, "init", "--", "sh", "-c", tt.script)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 6)
			if _, err := stdout.Read(buf); err != nil || string(buf) != "ready\n" {
				t.Fatalf("child not ready: %q %v (stderr %s)", buf, err, stderr.String())
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			code := 0
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.want {
				t.Errorf("exit code %d, want %d (stderr %s)", code, tt.want, stderr.String())
			}
		})
	}
}

func TestRunInitBadCommand(t *testing.T) {
	code, err := reaper.RunInit(context.Background(), reaper.InitConfig{})
	if err == nil || code != reaper.ExitNotFound {
		t.Errorf("no args: %d %v", code, err)
	}
	out, err := helperCmd(t, "init", "--", "/nonexistent/talos-no-such").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != reaper.ExitNotFound {
		t.Errorf("missing binary: %v, want exit %d (%s)", err, reaper.ExitNotFound, out)
	}
}

// Closing the reaper hands running children back to os/exec: their Wait
// still returns the right status instead of hanging.
func TestCloseHandsRunningChildrenBack(t *testing.T) {
	r, err := reaper.New(reaper.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := r.Command("sh", "-c", "sleep 0.1; exit 5")
	var out bytes.Buffer
	c.Cmd.Stdout = &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	r.Close()
	var ee *reaper.ExitError
	if err := c.Wait(); !errors.As(err, &ee) || ee.ExitCode() != 5 {
		t.Fatalf("Wait after Close = %v, want exit 5", err)
	}
	if e, ok := c.Exit(); !ok || e.Code() != 5 {
		t.Errorf("Exit() = %+v %v", e, ok)
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, cfg := range []reaper.Config{{UnknownStatusTTL: -1}, {MaxUnknownStatuses: -1}, {Idle: reaper.IdleConfig{Timeout: -1}}} {
		if r, err := reaper.New(cfg, nil); !errors.Is(err, talos.ErrConfigInvalid) {
			if r != nil {
				r.Close()
			}
			t.Errorf("New(%+v) = %v, want T010", cfg, err)
		}
	}
}
