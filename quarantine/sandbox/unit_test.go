package sandbox

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/strikes"
)

func TestParseEnd(t *testing.T) {
	r, ok := parseEnd("TALOS-END exit=137 signal=9 pids_max=3 oom_kill=1 outlived=1 scratch_full=0 timed_out=1 evidence=network:2f,resolve:6578")
	if !ok {
		t.Fatal("not parsed")
	}
	if r.exit != 137 || r.signal != 9 || r.pidsMax != 3 || r.oomKill != 1 || !r.outlived || r.scratchFull || !r.timedOut {
		t.Errorf("parsed %+v", r)
	}
	if len(r.evidence) != 2 || r.evidence[0] != (Evidence{"network", "/"}) || r.evidence[1] != (Evidence{"resolve", "ex"}) {
		t.Errorf("evidence %+v", r.evidence)
	}
	for _, bad := range []string{
		"",
		"TALOS-END",
		"TALOS-END exit=0",
		"TALOS-END exit=x signal=0 pids_max=0 oom_kill=0 outlived=0 scratch_full=0 timed_out=0 evidence=",
		"TALOS-END exit=0 signal=0 pids_max=0 oom_kill=0 outlived=0 scratch_full=0 timed_out=0 evidence=network:zz",
		"TALOS-END exit=0 signal=0 pids_max=0 oom_kill=0 outlived=0 scratch_full=0 timed_out=0 evidence=:00",
		"xTALOS-END exit=0 signal=0 pids_max=0 oom_kill=0 outlived=0 scratch_full=0 timed_out=0 evidence=",
	} {
		if _, ok := parseEnd(bad); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

func FuzzParseEnd(f *testing.F) {
	f.Add("TALOS-END exit=0 signal=0 pids_max=0 oom_kill=0 outlived=0 scratch_full=0 timed_out=0 evidence=")
	f.Add("TALOS-END exit=1 signal=0 pids_max=-1 oom_kill=-1 outlived=0 scratch_full=1 timed_out=0 evidence=exec:6f732e73797374656d,network:00")
	f.Add("TALOS-END evidence=a:,b:ff exit=0")
	f.Fuzz(func(t *testing.T, line string) {
		r, ok := parseEnd(line)
		if !ok {
			return
		}
		if !strings.HasPrefix(line, markerEnd) {
			t.Fatalf("parsed a line without the marker: %q", line)
		}
		for _, e := range r.evidence {
			if e.Kind == "" {
				t.Fatalf("empty evidence kind from %q", line)
			}
		}
		_ = Classify(Observation{IsolationOK: true, Ended: true, ExitCode: r.exit, Evidence: r.evidence})
	})
}

func TestCaptureCapsAndSplits(t *testing.T) {
	overs := 0
	c := &capture{max: 64, over: func() { overs++ }}
	out, errw := stream{c, true}, stream{c, false}
	out.Write([]byte(markerOK + "\nhello"))
	errw.Write([]byte("warn\n"))
	out.Write([]byte("\n" + markerEnd + "exit=0\n"))
	stdout, first, last := c.split()
	if first != markerOK || last != markerEnd+"exit=0" || string(stdout) != "hello" {
		t.Errorf("split: %q %q %q", stdout, first, last)
	}
	if overs != 0 {
		t.Error("over called under the cap")
	}
	out.Write([]byte(strings.Repeat("x", 100)))
	out.Write([]byte("more"))
	if overs != 1 {
		t.Errorf("over called %d times, want 1", overs)
	}
	if got := int64(c.stdout.Len() + c.stderr.Len()); got != c.max {
		t.Errorf("kept %d bytes, want the cap %d", got, c.max)
	}
}

func TestClassifyOrder(t *testing.T) {
	ev := []Evidence{{EvidenceWrite, "/x"}}
	for _, tc := range []struct {
		o    Observation
		want Outcome
		typ  strikes.Type
	}{
		{Observation{}, OutcomeIsolation, strikes.Security},
		{Observation{IsolationOK: true, Evidence: ev, OOMKilled: true, TimedOut: true, ExitCode: 1}, OutcomeSecurity, strikes.Security},
		{Observation{IsolationOK: true, OOMKilled: true, PidsLimitHit: true}, OutcomeMemory, strikes.Resource},
		{Observation{IsolationOK: true, PidsLimitHit: true, Outlived: true, TimedOut: true}, OutcomePids, strikes.Resource},
		{Observation{IsolationOK: true, OutputCapped: true, TimedOut: true}, OutcomeOutput, strikes.Resource},
		{Observation{IsolationOK: true, Ended: true, ScratchFull: true}, OutcomeScratch, strikes.Resource},
		{Observation{IsolationOK: true, Ended: true, Outlived: true}, OutcomeOutlived, strikes.Security},
		{Observation{IsolationOK: true, TimedOut: true, ExitCode: 137}, OutcomeTimeout, strikes.Timeout},
		{Observation{IsolationOK: true, ExitCode: 0}, OutcomeExit, strikes.Exception}, // no closing report
		{Observation{IsolationOK: true, Ended: true, ExitCode: 137, Signal: 9}, OutcomeExit, strikes.Exception},
		{Observation{IsolationOK: true, Ended: true}, OutcomeClean, ""},
	} {
		v := Classify(tc.o)
		if v.Outcome != tc.want || v.Strike != tc.typ || v.Reason == "" {
			t.Errorf("Classify(%+v) = %+v, want %s/%s", tc.o, v, tc.want, tc.typ)
		}
		if v.Strike != "" && !v.Strike.Valid() {
			t.Errorf("invalid strike type %q", v.Strike)
		}
	}
}

func TestConfigDefaultsAndErrors(t *testing.T) {
	cfg, err := Config{}.withDefaults("/tmp")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.MemoryLimit != DefaultMemoryLimit || cfg.PidsLimit != DefaultPidsLimit || cfg.CPUQuota != DefaultCPUQuota ||
		cfg.Timeout != DefaultTimeout || cfg.StagingDir != "/tmp/talos-sandbox" || cfg.User != DefaultUser || cfg.Image != DefaultImage {
		t.Errorf("defaults: %+v", cfg)
	}
	_, err = Config{MemoryLimit: 1, CPUQuota: 500, PidsLimit: 1000, Timeout: time.Hour, StagingDir: "rel/dir", User: "0:0", MaxOutputBytes: 1}.withDefaults("/tmp")
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, field := range []string{"MemoryLimit", "CPUQuota", "PidsLimit", "Timeout", "StagingDir", "User", "MaxOutputBytes"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error does not name %s: %v", field, err)
		}
	}
	if d := supervisorDeadline(10 * time.Second); d != 8*time.Second {
		t.Errorf("deadline %v", d)
	}
	if d := supervisorDeadline(time.Second); d != 800*time.Millisecond {
		t.Errorf("deadline %v", d)
	}
}

// TestSupervisorRefusesAHostThatIsNotIsolated runs the embedded supervisor
// on this machine, outside any container: its self-check must refuse to run
// the skill (not PID 1, host network interfaces) and say why.
func TestSupervisorRefusesAHostThatIsNotIsolated(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on this machine to run the supervisor outside a container")
	}
	dir := t.TempDir()
	entry := filepath.Join(dir, "main.py")
	marker := filepath.Join(dir, "ran")
	if err := os.WriteFile(entry, []byte("open("+`"`+marker+`"`+", 'w').write('x')\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, py, "-I", "-S", "-B", "-c", supervisorScript, entry, "0", "5").Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 97 {
		t.Fatalf("exit: %v, output %q", err, out)
	}
	first, _, _ := strings.Cut(string(out), "\n")
	if !strings.HasPrefix(first, markerFail) || !strings.Contains(first, "not PID 1") {
		t.Errorf("first line %q", first)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Error("the skill ran although the self-check failed")
	}
}

func TestResultFailure(t *testing.T) {
	if _, ok := (Result{Verdict: Classify(Observation{IsolationOK: true, Ended: true})}).Failure(); ok {
		t.Error("a clean run gave a strike")
	}
	r := Result{RunID: "r1", ContainerID: "c1", Verdict: Classify(Observation{IsolationOK: true, Ended: true, ExitCode: 1}),
		Stderr: []byte("Traceback (most recent call last):\n  File \"/skill/main.py\", line 1, in <module>\nmod.KeyError2: 'title' at 0x7f01\n")}
	f, ok := r.Failure()
	if !ok || f.Type != strikes.Exception || f.ExceptionType != "mod.KeyError2" || f.Message != "'title' at 0x7f01" || f.ExecutionID != "r1" || f.ContainerID != "c1" {
		t.Errorf("failure %+v", f)
	}
	r.Stderr = []byte("no traceback here: x\n")
	if f, _ := r.Failure(); f.ExceptionType != "ExitStatus" || f.Message != "exited with status 1" {
		t.Errorf("failure %+v", f)
	}
	r.Verdict = Classify(Observation{IsolationOK: true, TimedOut: true})
	if f, _ := r.Failure(); f.Type != strikes.Timeout || f.ExceptionType != "Timeout" {
		t.Errorf("failure %+v", f)
	}
	for _, bad := range []string{"Traceback (most recent call last):\n9bad: x", "Traceback (most recent call last):\nhas space: x", "Traceback (most recent call last):\n: x"} {
		if _, _, ok := lastException([]byte(bad)); ok {
			t.Errorf("parsed %q", bad)
		}
	}
}

// TestHardTimeoutWithoutTheSupervisor lets the supervisor's own deadline
// lie past Timeout, so the sandbox itself must kill the container: the run
// is a timeout, the supervisor's report is missing, and the container is
// gone.
func TestHardTimeoutWithoutTheSupervisor(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.PythonImage(t)
	staging, err := os.MkdirTemp("", "talos-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(staging)
	s, err := New(Config{DockerHost: host, Image: img, Timeout: 3 * time.Second, StagingDir: filepath.Join(staging, "stage")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.deadline = func(d time.Duration) time.Duration { return 10 * d }
	dir := filepath.Join(t.TempDir(), "spin")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte("id: spin_skill\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "main.py"), []byte("while True:\n    pass\n"), 0o600)
	res, err := s.Run(context.Background(), Request{Dir: dir, RunID: "hard-timeout"})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict.Outcome != OutcomeTimeout || res.Verdict.Strike != strikes.Timeout || res.Observation.Ended || !res.Observation.TimedOut {
		t.Errorf("verdict %+v observation %+v", res.Verdict, res.Observation)
	}
	if _, err := s.cli.ContainerInspect(context.Background(), res.ContainerID, client.ContainerInspectOptions{}); err == nil {
		t.Error("the container still exists")
	}
}

// TestSupervisorRefusesAContainerThatIsNotIsolated starts the supervisor,
// with the raw engine (not through the sandbox or its proxy), in a
// container with none of the sandbox's settings: a network, a writable
// root, root, the default capabilities, no no-new-privileges and the host's
// PID namespace. The self-check must name every one of them and never run
// the skill.
func TestSupervisorRefusesAContainerThatIsNotIsolated(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.PythonImage(t)
	raw, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	ctx := context.Background()
	c, err := raw.ContainerCreate(ctx, client.ContainerCreateOptions{
		Config:     &container.Config{Image: img, Cmd: []string{"python3", "-I", "-S", "-B", "-c", supervisorScript, "/nonexistent.py", "0", "5"}},
		HostConfig: &container.HostConfig{PidMode: "host"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer raw.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
	w := raw.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
	if _, err := raw.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-w.Result:
		if r.StatusCode != 97 {
			t.Errorf("exit %d, want 97", r.StatusCode)
		}
	case err := <-w.Error:
		t.Fatal(err)
	}
	rc, err := raw.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	var out, errb strings.Builder
	if _, err := stdcopy.StdCopy(&out, &errb, rc); err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(out.String(), "\n")
	if !strings.HasPrefix(first, markerFail) {
		t.Fatalf("first line %q (stderr %q)", first, errb.String())
	}
	for _, want := range []string{"network interfaces besides loopback", "root filesystem is writable", "not PID 1", "runs as root", "capabilities left", "no_new_privs"} {
		if !strings.Contains(first, want) {
			t.Errorf("self-check did not report %q: %s", want, first)
		}
	}
	v := Classify(Observation{IsolationProblem: strings.TrimPrefix(first, markerFail)})
	if v.Outcome != OutcomeIsolation || v.Strike != strikes.Security {
		t.Errorf("verdict %+v", v)
	}
}

// TestProxyHoldsTheSandboxToItsProfile sends creates the sandbox never
// makes through its own proxy socket: a bind outside the staging folder, a
// bridge network and a writable root are all denied before the engine sees
// them.
func TestProxyHoldsTheSandboxToItsProfile(t *testing.T) {
	host := testenv.DockerHost(t)
	img := testenv.PythonImage(t)
	staging, err := os.MkdirTemp("", "talos-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(staging)
	s, err := New(Config{DockerHost: host, Image: img, StagingDir: filepath.Join(staging, "stage")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for name, hc := range map[string]*container.HostConfig{
		"bind outside staging": {ReadonlyRootfs: true, NetworkMode: "none", Binds: []string{"/etc:/host-etc:ro"}},
		"bridge network":       {ReadonlyRootfs: true, NetworkMode: "bridge"},
		"writable root":        {ReadonlyRootfs: false, NetworkMode: "none"},
		"privileged":           {ReadonlyRootfs: true, NetworkMode: "none", Privileged: true},
	} {
		_, err := s.cli.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &container.Config{Image: img}, HostConfig: hc})
		if err == nil || !strings.Contains(err.Error(), "sockproxy: denied") {
			t.Errorf("%s: err = %v, want a proxy denial", name, err)
		}
	}
	p := Profile("/srv/stage")
	if len(p.BindAllowlist) != 1 || p.BindAllowlist[0] != "/srv/stage" || len(p.NetworkModes) != 1 || p.NetworkModes[0] != "none" {
		t.Errorf("profile %+v", p)
	}
}

func FuzzLastException(f *testing.F) {
	f.Add("Traceback (most recent call last):\n  File \"/skill/main.py\", line 1\nValueError: bad\n")
	f.Add("Traceback (most recent call last):\nKeyboardInterrupt\n")
	f.Add("Traceback (most recent call last):\n\xff: x")
	f.Fuzz(func(t *testing.T, stderr string) {
		typ, msg, ok := lastException([]byte(stderr))
		if !ok {
			return
		}
		if typ == "" || len(typ) > 200 || strings.ContainsAny(typ, " :\n") {
			t.Fatalf("type %q from %q", typ, stderr)
		}
		if strings.Contains(msg, "\n") {
			t.Fatalf("message %q spans lines", msg)
		}
	})
}
