package sandbox_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

// testTimeout keeps the suite fast: the spec's minimum is 10 s.
const testTimeout = 10 * time.Second

// engine is the real engine's client, used by the tests only to check
// from outside (images, leftover containers); the sandbox itself talks to
// its proxy.
func engine(t testing.TB) (*client.Client, string) {
	t.Helper()
	host := testenv.DockerHost(t)
	img := testenv.PythonImage(t)
	c, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.ImageInspect(context.Background(), img); err != nil {
		msg := "the Python image " + img + " is not in the engine: run `scripts/services.sh python-image`"
		if testenv.Required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return c, img
}

// newSandbox returns a sandbox on the harness's engine with short limits.
func newSandbox(t *testing.T, mod func(*sandbox.Config)) (*sandbox.Sandbox, *client.Client) {
	t.Helper()
	c, img := engine(t)
	staging, err := os.MkdirTemp("", "talos-sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(staging) })
	stagingDirs.Store(staging, true)
	cfg := sandbox.Config{
		DockerHost:     testenv.DockerHost(t),
		Image:          img,
		Timeout:        testTimeout,
		MemoryLimit:    128 << 20,
		PidsLimit:      32,
		CPUQuota:       100,
		MaxOutputBytes: 256 << 10,
		ScratchBytes:   16 << 20,
		StagingDir:     filepath.Join(staging, "stage"),
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if err := s.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, c
}

// writeSkill writes a skill folder the way the quarantine keeps it: files
// 0600 in a 0700 folder.
func writeSkill(t testing.TB, id, code string, subprocess bool) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), id)
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	man := "id: " + id + "\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"
	if subprocess {
		man += "capabilities:\n  subprocess: true\n"
	}
	for name, body := range map[string]string{quarantine.ManifestName: man, "main.py": code} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// leftovers lists the sandbox's containers still on the engine.
// stagingDirs holds the staging folders of this process's sandboxes.
var stagingDirs sync.Map

func leftovers(t *testing.T, c *client.Client) []string {
	t.Helper()
	res, err := c.ContainerList(context.Background(), client.ContainerListOptions{
		All: true, Filters: make(client.Filters).Add("label", sandbox.LabelSkill),
	})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, it := range res.Items {
		// Only this test process's sandboxes (their staging folders come
		// from newSandbox): other tests run skills on the same engine at
		// the same time, with the same labels.
		ours := false
		for _, m := range it.Mounts {
			stagingDirs.Range(func(dir, _ any) bool {
				ours = ours || strings.HasPrefix(m.Source, dir.(string)+"/")
				return !ours
			})
		}
		if ours {
			ids = append(ids, it.ID[:12]+" "+strings.Join(it.Names, ","))
		}
	}
	return ids
}

func TestCleanSkillPasses(t *testing.T) {
	s, c := newSandbox(t, nil)
	dir := writeSkill(t, "clean_skill", `import sys
import helper
from lib import words
with open("/tmp/scratch.txt", "w") as f:
    f.write("kept in scratch")
print(helper.greet(), sys.argv[1:], open("/tmp/scratch.txt").read(), words.WORDS)
print("to stderr", file=sys.stderr)
with open("/dev/stderr", "w") as f:
    f.write("via /dev/stderr\n")
for p in ["/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"]:  # reading its limits is allowed
    try:
        open(p).read()
    except FileNotFoundError:
        pass
sys.stdout.write("no newline at the end")
`, false)
	// A module beside the entry point and a package in a subfolder, 0600 in
	// 0700 folders as the quarantine keeps them.
	if err := os.WriteFile(filepath.Join(dir, "helper.py"), []byte("def greet():\n    return 'hello from'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "lib"), 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{"__init__.py": "", "words.py": "WORDS = ['a', 'b']\n"} {
		if err := os.WriteFile(filepath.Join(dir, "lib", name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	h, err := quarantine.HashDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.Run(context.Background(), sandbox.Request{Dir: dir, Hash: h.Hash, Args: []string{"a", "b"}})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Verdict.Passed() || res.Verdict.Strike != "" {
		t.Fatalf("verdict %+v, observation %+v\nstdout %q\nstderr %q", res.Verdict, res.Observation, res.Stdout, res.Stderr)
	}
	if got, want := string(res.Stdout), "hello from ['a', 'b'] kept in scratch ['a', 'b']\nno newline at the end"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if got := string(res.Stderr); got != "to stderr\nvia /dev/stderr\n" {
		t.Errorf("stderr %q", got)
	}
	if !res.RunResult().Passed {
		t.Error("RunResult not passed")
	}
	if l := leftovers(t, c); len(l) > 0 {
		t.Errorf("containers left: %v", l)
	}
}

func TestRunRefusesChangedHash(t *testing.T) {
	s, _ := newSandbox(t, nil)
	dir := writeSkill(t, "hash_skill", "print('x')\n", false)
	_, err := s.Run(context.Background(), sandbox.Request{Dir: dir, Hash: strings.Repeat("0", 64)})
	if err == nil || !strings.Contains(err.Error(), "not the approved") {
		t.Fatalf("err = %v, want a hash mismatch", err)
	}
}

// hostListener accepts connections on every host address and counts them.
func hostListener(t *testing.T) (port int, accepted *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "0.0.0.0:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted = new(atomic.Int64)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port, accepted
}

// hostAddrs returns the host's IPv4 addresses the skill could aim at.
func hostAddrs(t *testing.T) []string {
	t.Helper()
	addrs := []string{"127.0.0.1", "172.17.0.1"}
	ifs, _ := net.InterfaceAddrs()
	for _, a := range ifs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil {
			addrs = append(addrs, n.IP.String())
		}
	}
	return addrs
}

func pyList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = strconv.Quote(x)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// TestCancelRemovesTheContainer cancels runs whose skill sleeps at several
// points (during create, start, the run itself): Run returns an error (no
// verdict) or, when the cancel came after the end, a verdict, and in every
// case the container and the staged copy are gone when it returns.
func TestCancelRemovesTheContainer(t *testing.T) {
	s, c := newSandbox(t, nil)
	dir := writeSkill(t, "sleepy_skill", "import time\nprint('up', flush=True)\ntime.sleep(60)\n", false)
	for i, after := range []time.Duration{0, time.Millisecond, 5 * time.Millisecond, 20 * time.Millisecond,
		50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, time.Second} {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := s.Run(ctx, sandbox.Request{Dir: dir, RunID: fmt.Sprintf("cancel-%d", i)})
			done <- err
		}()
		time.Sleep(after)
		cancel()
		err := <-done
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancel after %v: err = %v, want cancelled", after, err)
		}
		if l := leftovers(t, c); len(l) > 0 {
			t.Fatalf("cancel after %v: containers left: %v", after, l)
		}
		if ents, _ := os.ReadDir(s.Config().StagingDir); len(ents) > 0 {
			t.Errorf("cancel after %v: staged copies left: %d", after, len(ents))
		}
	}
}

// TestConcurrentRuns runs three skills at once on one sandbox: each gets its
// own container, staged copy and output.
func TestConcurrentRuns(t *testing.T) {
	s, c := newSandbox(t, nil)
	type out struct {
		i   int
		res sandbox.Result
		err error
	}
	done := make(chan out, 3)
	for i := range 3 {
		dir := writeSkill(t, fmt.Sprintf("conc_skill_%d", i), fmt.Sprintf("print('run %d')\n", i), false)
		go func() {
			res, err := s.Run(context.Background(), sandbox.Request{Dir: dir})
			done <- out{i, res, err}
		}()
	}
	for range 3 {
		o := <-done
		if o.err != nil || !o.res.Verdict.Passed() || string(o.res.Stdout) != fmt.Sprintf("run %d\n", o.i) {
			t.Errorf("run %d: %v %+v %q", o.i, o.err, o.res.Verdict, o.res.Stdout)
		}
	}
	if l := leftovers(t, c); len(l) > 0 {
		t.Errorf("containers left: %v", l)
	}
}
