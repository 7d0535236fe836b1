package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
)

// daemonProc is a process of the built binary (`talos run`, mostly).
type daemonProc struct {
	cmd  *exec.Cmd
	out  *testenv.LockedBuffer
	done chan error
}

// startDaemon starts `talos run` of bin on home with extra environment and
// --set pairs, on free ports, and waits for its ready marker.
func startDaemon(t *testing.T, bin, home string, env []string, sets ...string) *daemonProc {
	t.Helper()
	port := freeAddr(t)[len("127.0.0.1:"):]
	args := []string{"run", "--home", home, "--health-addr", freeAddr(t), "--set", "WEB_PORT=" + port}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	p := startProc(t, bin, env, args...)
	cmd := p.cmd
	marker := filepath.Join(home, boot.ReadyFileName)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if r, err := boot.ReadReady(marker); err == nil && r.PID == cmd.Process.Pid {
			return p
		}
		select {
		case err := <-p.done:
			t.Fatalf("talos run exited before it was ready: %v\n%s", err, p.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("talos run not ready in 30 s\n%s", p.out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startProc starts bin with args and extra environment, its output
// collected; the test's end kills it if it still runs.
func startProc(t *testing.T, bin string, env []string, args ...string) *daemonProc {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	p := &daemonProc{cmd: cmd, out: &testenv.LockedBuffer{}, done: make(chan error, 1)}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit and returns how it ended.
func (p *daemonProc) wait(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the cleanup
		return err
	case <-time.After(within):
		t.Fatalf("talos %s did not exit within %v\n%s", strings.Join(p.cmd.Args[1:min(3, len(p.cmd.Args))], " "), within, p.out.String())
		return nil
	}
}

// readCheckpoint returns the dream checkpoint's state and current phase.
func readCheckpoint(home string) (state, current string) {
	b, err := os.ReadFile(filepath.Join(home, filepath.FromSlash(host.DreamDir), "checkpoint.json"))
	if err != nil {
		return "", ""
	}
	var cp struct{ State, Current string }
	if json.Unmarshal(b, &cp) != nil {
		return "", ""
	}
	return cp.State, cp.Current
}

// waitCheckpoint polls the checkpoint until ok says yes.
func waitCheckpoint(t *testing.T, home string, within time.Duration, ok func(state, current string) bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		if ok(readCheckpoint(home)) {
			return
		}
		if time.Now().After(deadline) {
			s, c := readCheckpoint(home)
			t.Fatalf("dream checkpoint is %q/%q after %v", s, c, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// seedDueWindow makes the latest minute of the schedule "* * * * *" due
// on the next start: the ledger says the last window handled was just
// before it (a daemon that was down when it came).
func seedDueWindow(t *testing.T, home string) {
	t.Helper()
	dir := filepath.Join(home, filepath.FromSlash(host.DreamDir))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	last := time.Now().Truncate(time.Minute).Add(-time.Second)
	ledger := fmt.Sprintf(`{"version":1,"last_window":%q}`, last.Format(time.RFC3339Nano))
	if err := os.WriteFile(filepath.Join(dir, "ledger.json"), []byte(ledger), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDreamEndToEnd runs the built binary: a daemon killed in a dream
// phase, and two operators' cycles at once.
func TestDreamEndToEnd(t *testing.T) {
	began := time.Now()
	bin := buildTalos(t, t.TempDir())
	t.Logf("built talos in %v", time.Since(began).Round(time.Millisecond))
	t.Run("KilledDaemonResumes", func(t *testing.T) { testDaemonKilledInADreamPhaseResumes(t, bin) })
	t.Run("TwoRunNowNeverOverlap", func(t *testing.T) { testTwoDreamRunNowNeverOverlap(t, bin) })
	t.Run("StopDuringOperatorCycle", func(t *testing.T) { testStopDuringOperatorCycle(t, bin) })
}

// A cycle `talos dream run --now` asked the daemon for ends with the
// daemon's shutdown: SIGTERM in the middle of a held phase stops the
// daemon cleanly (exit 0) well within its drain, instead of waiting for
// the request and then closing the stores under the running cycle.
func testStopDuringOperatorCycle(t *testing.T, bin string) {
	home := initHome(t)
	d := startDaemon(t, bin, home, []string{host.EnvTestPhaseDelay + "=" + dream.PhaseLogCompress + "=2m"})
	op := startProc(t, bin, nil, "dream", "run", "--now", "--home", home)
	waitCheckpoint(t, home, 30*time.Second, func(s, c string) bool { return s == "running" && c == dream.PhaseLogCompress })
	if !strings.Contains(op.out.String(), "runs the cycle") {
		t.Fatalf("the operator's cycle did not go to the daemon:\n%s", op.out.String())
	}
	stopAt := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d.wait(t, 12*time.Second); err != nil {
		t.Fatalf("daemon stopped during an operator's cycle: %v\n%s", err, d.out.String())
	}
	t.Logf("daemon stopped %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	err := op.wait(t, 10*time.Second)
	t.Logf("talos dream run --now ended with %v:\n%s", err, op.out.String())
}

// A real `talos run` killed with SIGKILL in the middle of a dream phase,
// then restarted: the cycle resumes from its checkpoint (the phases done
// before the kill are not run again, the interrupted one runs to its end),
// no permanent memory and no audit line is lost, and `talos logs verify`
// passes. While the killed daemon's cycle ran, `talos dream run --now`
// refused with exit code 3.
func testDaemonKilledInADreamPhaseResumes(t *testing.T, bin string) {
	home := initHome(t)
	perm := []string{"perm-0", "perm-1", "perm-2"}
	for i, id := range perm {
		if out, _, err := talosCmd(context.Background(), "memory", "add", "--home", home, "--id", id, "--priority", "permanent",
			fmt.Sprintf("permanent fact number %d: the backup key lives in vault slot %d", i, 40+i)); err != nil {
			t.Fatalf("memory add: %v\n%s", err, out)
		}
	}
	for _, id := range []string{"dup-a", "dup-b"} { // consolidation merges these after the resume
		if out, _, err := talosCmd(context.Background(), "memory", "add", "--home", home, "--id", id,
			"the staging database moved to host db2 on monday"); err != nil {
			t.Fatalf("memory add: %v\n%s", err, out)
		}
	}
	seedDueWindow(t, home)

	// First daemon: the due window starts a cycle at boot; memory_consolidate
	// is held long by the test-only knob.
	d1 := startDaemon(t, bin, home, []string{host.EnvTestPhaseDelay + "=" + host.PhaseConsolidate + "=2m"}, "TALOS_DREAM_SCHEDULE=* * * * *")
	waitCheckpoint(t, home, 30*time.Second, func(s, c string) bool { return s == "running" && c == host.PhaseConsolidate })

	// The cycle holds the lock: an operator's cycle refuses, naming the holder.
	out, _, err := talosCmd(context.Background(), "dream", "run", "--now", "--home", home)
	if exitCode(err) != exitDreamBusy || !strings.Contains(err.Error(), "held by pid "+strconv.Itoa(d1.cmd.Process.Pid)) {
		t.Errorf("dream run --now during the daemon's cycle: exit %d, %v\n%s", exitCode(err), err, out)
	}

	auditPath := filepath.Join(home, "logs", "tier1", "audit.log")
	before, err := os.ReadFile(auditPath)
	if err != nil || !bytes.Contains(before, []byte(`"daemon_started"`)) {
		t.Fatalf("audit log before the kill: %v\n%s", err, before)
	}
	killedAt := time.Now()
	if err := d1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := d1.wait(t, 10*time.Second); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("first daemon ended with %v, want SIGKILL", err)
	}
	if s, c := readCheckpoint(home); s != "running" || c != host.PhaseConsolidate {
		t.Fatalf("checkpoint after the kill: %q/%q", s, c)
	}

	// Second daemon, without the knob, on a daily window twelve hours away
	// (so no new window comes during the test, whenever it runs): it
	// resumes the killed cycle.
	d2 := startDaemon(t, bin, home, nil, fmt.Sprintf("TALOS_DREAM_SCHEDULE=0 %d * * *", (time.Now().Hour()+12)%24))
	waitCheckpoint(t, home, 60*time.Second, func(s, _ string) bool { return s != "running" })
	if err := d2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := d2.wait(t, 25*time.Second); err != nil {
		t.Fatalf("second daemon: %v\n%s", err, d2.out.String())
	}
	if !strings.Contains(d2.out.String(), "recovering: the previous run (pid "+strconv.Itoa(d1.cmd.Process.Pid)) {
		t.Errorf("the restart did not report the recovery:\n%s", d2.out.String())
	}

	rep := latestReport(t, home)
	t.Logf("resumed cycle:\n%s", rep.Summary())
	if rep.Resumed != 1 || rep.Outcome != dream.OutcomeOK || rep.Kind != dream.KindScheduled {
		t.Errorf("resumed cycle: resumed %d outcome %s kind %s\n%s", rep.Resumed, rep.Outcome, rep.Kind, rep.Summary())
	}
	seen := map[string]dream.PhaseReport{}
	for _, p := range rep.Phases {
		seen[p.Name] = p
	}
	for _, name := range []string{dream.PhaseRedisFlush, dream.PhaseVectorPrune} {
		if p := seen[name]; p.Started.IsZero() || !p.Started.Before(killedAt) {
			t.Errorf("%s started %v, want before the kill at %v (done then, not run again)", name, p.Started, killedAt)
		}
	}
	c := seen[host.PhaseConsolidate]
	if c.Status != dream.StatusOK || !c.Started.After(killedAt) || c.Counters["memories_merged"] != 1 {
		t.Errorf("memory_consolidate after the resume: %+v", c)
	}
	for _, name := range []string{dream.PhaseLogCompress, dream.PhaseHealthReport} {
		if p := seen[name]; !p.Started.After(killedAt) {
			t.Errorf("%s started %v, want after the resume", name, p.Started)
		}
	}

	// No permanent memory lost.
	cfg, err := config.Load(config.LoadOptions{Home: home})
	if err != nil {
		t.Fatal(err)
	}
	m, err := host.OpenMemory(context.Background(), cfg, host.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := m.Store.Get(context.Background(), perm)
	m.Close()
	if err != nil || len(got) != len(perm) {
		t.Errorf("permanent memories after the kill and resume: %d of %d (%v)", len(got), len(perm), err)
	}
	// No audit line lost: the log before the kill is a prefix of the log
	// after, and the whole chain verifies.
	after, err := os.ReadFile(auditPath)
	if err != nil || !bytes.HasPrefix(after, before) {
		t.Errorf("the audit log lost or changed lines written before the kill (%v)", err)
	}
	for _, want := range []string{`"daemon_recovered"`, `"daemon_stopped"`} {
		if !bytes.Contains(after[len(before):], []byte(want)) {
			t.Errorf("no %s audit line after the restart", want)
		}
	}
	if out, _, err := talosCmd(context.Background(), "logs", "verify", "--home", home); err != nil || !strings.Contains(out, "OK") {
		t.Errorf("logs verify: %v\n%s", err, out)
	}
}

// Two `talos dream run --now` processes on one home never run at once: the
// second refuses with exit code 3 and names the first's pid.
func testTwoDreamRunNowNeverOverlap(t *testing.T, bin string) {
	home := initHome(t)
	first := startProc(t, bin, []string{host.EnvTestPhaseDelay + "=" + dream.PhaseLogCompress + "=1m"}, "dream", "run", "--now", "--home", home).cmd
	waitCheckpoint(t, home, 30*time.Second, func(s, c string) bool { return s == "running" && c == dream.PhaseLogCompress })

	second := exec.Command(bin, "dream", "run", "--now", "--home", home)
	out2, err := second.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitDreamBusy || !strings.Contains(string(out2), "held by pid "+strconv.Itoa(first.Process.Pid)) {
		t.Fatalf("second dream run --now: %v\n%s", err, out2)
	}
}

// latestReport reads the newest cycle report of home.
func latestReport(t *testing.T, home string) *dream.Report {
	t.Helper()
	dir := filepath.Join(home, filepath.FromSlash(host.DreamDir), "reports")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var newest string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".json") && e.Name() > newest {
			newest = e.Name()
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, newest))
	if err != nil {
		t.Fatal(err)
	}
	var r dream.Report
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return &r
}
