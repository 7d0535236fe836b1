package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

// hostile is one skill that tries to get out, and what the sandbox must
// make of it.
type hostile struct {
	name       string
	code       string
	subprocess bool // the manifest declares subprocess
	strike     strikes.Type
	outcome    sandbox.Outcome
	evidence   string // an evidence kind that must be reported, if any
}

// TestHostileSkills runs each hostile skill on the real engine through the
// sandbox's proxy, one after the other, and checks that it was contained
// (no connection reached the host, no host file changed, nothing of the
// host's shadow file printed), that it ends with the expected strike type,
// and that no container is left behind.
func TestHostileSkills(t *testing.T) {
	s, c := newSandbox(t, nil)
	tr, err := strikes.New(strikes.Config{Key: bytes.Repeat([]byte{3}, strikes.MinKeyLen)}, strikestest.NewMemoryStore(), &deprecations{})
	if err != nil {
		t.Fatal(err)
	}
	port, accepted := hostListener(t)
	targets := pyList(hostAddrs(t))
	canary := filepath.Join(t.TempDir(), "canary")
	if err := os.WriteFile(canary, []byte("host file"), 0o644); err != nil {
		t.Fatal(err)
	}
	shadow, _ := os.ReadFile("/etc/shadow")
	shadowLine, _, _ := strings.Cut(string(shadow), "\n")

	cases := []hostile{
		{name: "reach a listener on the host", code: fmt.Sprintf(`import socket
for host in %s:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect((host, %d))
        print("connected", host)
    except OSError as e:
        print("refused", host, e)
`, targets, port), strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceNetwork},
		{name: "reach the host with the raw _socket module", code: fmt.Sprintf(`import _socket
s = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
s.connect(("127.0.0.1", %d))
`, port), strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceNetwork},
		{name: "send UDP to a public resolver", code: `import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try:
    s.sendto(b"x", ("8.8.8.8", 53))
except OSError as e:
    print("no", e)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceNetwork},
		{name: "resolve a name", code: `import socket
try:
    print(socket.getaddrinfo("example.org", 443))
except OSError as e:
    print("no", e)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceResolve},
		{name: "write to /", code: `open("/pwned", "w").write("x")
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceWrite},
		{name: "write to / with os.open", code: `import os
try:
    os.open("/etc/pwned", os.O_CREAT | os.O_WRONLY, 0o644)
except OSError as e:
    print("no", e)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceWrite},
		{name: "write outside its folder", code: `import os
for p in ["../outside.txt", "own-file.txt", "/skill/main.py"]:
    try:
        with open(p, "a") as f:
            f.write("x")
    except OSError as e:
        print("no", p, e)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceWrite},
		{name: "read the host's /etc/shadow", code: `print(open("/etc/shadow").read())
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceSensitive},
		{name: "read PID 1's environment", code: `try:
    print(open("/proc/1/environ").read())
except OSError as e:
    print("no", e)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceSensitive},
		{name: "patch its own memory to remove the hooks", code: `import os
fd = os.open("/proc/self/mem", os.O_RDWR)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceHookEvasion},
		{name: "reach the Docker socket", code: `import socket
for p in ["/var/run/docker.sock", "/run/docker.sock"]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p)
        s.sendall(b"GET /containers/json HTTP/1.0\r\n\r\n")
        print(s.recv(1000))
    except OSError as e:
        print("no", p, e)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceDockerSocket},
		{name: "run a shell without declaring subprocess", code: `import os
os.system("cat /etc/passwd")
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceExec},
		{name: "kill the supervisor", code: `import os, signal
os.kill(1, signal.SIGKILL)
`, strike: strikes.Security, outcome: sandbox.OutcomeSecurity, evidence: sandbox.EvidenceSignal},
		{name: "spawn a detached process that outlives the run", code: `import os, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(60)
        open("/tmp/still-here", "w").write("x")
    os._exit(0)
time.sleep(0.2)
print("parent leaves")
`, strike: strikes.Security, outcome: sandbox.OutcomeOutlived},
		{name: "declared subprocess: a fresh interpreter without hooks dials the host", subprocess: true, code: fmt.Sprintf(`import subprocess, sys
code = "import socket\nfor h in %s:\n    try:\n        socket.create_connection((h, %d), timeout=1); print('IN', h)\n    except OSError as e:\n        print('out', h, e)\n"
out = subprocess.run(["python3", "-I", "-c", code], capture_output=True, text=True).stdout
print(out)
if "IN" not in out:
    raise SystemExit("every connection failed")
`, strings.ReplaceAll(targets, `"`, `'`), port), strike: strikes.Exception, outcome: sandbox.OutcomeExit},
		{name: "fork without bound", code: `import os
while True:
    try:
        os.fork()
    except OSError:
        pass
`, strike: strikes.Resource, outcome: sandbox.OutcomePids},
		{name: "allocate past the memory limit", code: `chunks = []
while True:
    chunks.append(b"x" * (16 << 20))
`, strike: strikes.Resource, outcome: sandbox.OutcomeMemory},
		{name: "print 100 MB", code: `import sys
chunk = "x" * (1 << 20)
for _ in range(100):
    sys.stdout.write(chunk)
`, strike: strikes.Resource, outcome: sandbox.OutcomeOutput},
		{name: "fill the scratch space", code: `try:
    with open("/tmp/fill", "wb") as f:
        while True:
            f.write(b"x" * (1 << 20))
except OSError as e:
    print("full", e)
`, strike: strikes.Resource, outcome: sandbox.OutcomeScratch},
		{name: "sleep past the timeout", code: `import time
time.sleep(120)
`, strike: strikes.Timeout, outcome: sandbox.OutcomeTimeout},
		{name: "ignore SIGTERM and spin past the timeout", code: `import signal
signal.signal(signal.SIGTERM, signal.SIG_IGN)
while True:
    pass
`, strike: strikes.Timeout, outcome: sandbox.OutcomeTimeout},
		{name: "raise an exception", code: `raise RuntimeError("boom")
`, strike: strikes.Exception, outcome: sandbox.OutcomeExit},
		{name: "exit non-zero", code: `import sys
sys.exit(3)
`, strike: strikes.Exception, outcome: sandbox.OutcomeExit},
	}
	if len(cases) < 15 {
		t.Fatalf("only %d hostile skills", len(cases))
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("hostile_%02d", i)
			dir := writeSkill(t, id, tc.code, tc.subprocess)
			before, err := quarantine.HashDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			res, err := s.Run(context.Background(), sandbox.Request{Dir: dir, Hash: before.Hash})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s in %v: %s (exit %d)", res.Verdict.Outcome, time.Since(start).Round(time.Millisecond), res.Verdict.Reason, res.ExitCode)
			if res.Verdict.Strike != tc.strike || res.Verdict.Outcome != tc.outcome {
				t.Errorf("verdict %+v, want %s / %s\nobservation %+v\nstdout %q\nstderr %q",
					res.Verdict, tc.outcome, tc.strike, res.Observation, clipBytes(res.Stdout), clipBytes(res.Stderr))
			}
			if !res.Observation.IsolationOK {
				t.Errorf("isolation not verified: %q", res.Observation.IsolationProblem)
			}
			if tc.evidence != "" && !hasEvidence(res.Observation.Evidence, tc.evidence) {
				t.Errorf("no %s evidence in %+v", tc.evidence, res.Observation.Evidence)
			}
			if res.RunResult().Passed {
				t.Error("a hostile run passed")
			}
			// Recorded: the strike the caller would record is accepted.
			f, ok := res.Failure()
			if !ok {
				t.Fatal("no strike for a hostile run")
			}
			rec, err := tr.Record(context.Background(), strikes.Skill{ID: id, Version: "1.0.0", Hash: before.Hash}, f)
			if err != nil || !rec.Recorded || rec.Strike.Type != tc.strike {
				t.Errorf("strike not recorded: %v %+v", err, rec)
			}
			if int64(len(res.Stdout)+len(res.Stderr)) > s.Config().MaxOutputBytes {
				t.Errorf("captured %d bytes, more than the cap", len(res.Stdout)+len(res.Stderr))
			}
			// Contained: nothing reached the host.
			if n := accepted.Load(); n != 0 {
				t.Fatalf("the host listener accepted %d connections", n)
			}
			if shadowLine != "" && (bytes.Contains(res.Stdout, []byte(shadowLine)) || bytes.Contains(res.Stderr, []byte(shadowLine))) {
				t.Fatal("the host's /etc/shadow leaked into the output")
			}
			after, err := quarantine.HashDir(dir)
			if err != nil || after.Hash != before.Hash {
				t.Errorf("the skill's folder changed: %v", err)
			}
			if now, _ := os.ReadFile("/etc/shadow"); !bytes.Equal(now, shadow) {
				t.Error("the host's /etc/shadow changed")
			}
			if b, err := os.ReadFile(canary); err != nil || string(b) != "host file" {
				t.Errorf("host canary changed: %q %v", b, err)
			}
			for _, p := range []string{"/pwned", "/etc/pwned", "/outside.txt"} {
				if _, err := os.Stat(p); err == nil {
					t.Errorf("%s exists on the host", p)
				}
			}
			if l := leftovers(t, c); len(l) > 0 {
				t.Errorf("containers left behind: %v", l)
			}
			if ents, _ := os.ReadDir(s.Config().StagingDir); len(ents) > 0 {
				t.Errorf("staged copies left behind: %d", len(ents))
			}
		})
	}
}

func hasEvidence(ev []sandbox.Evidence, kind string) bool {
	for _, e := range ev {
		if e.Kind == kind {
			return true
		}
	}
	return false
}

func clipBytes(b []byte) string {
	if len(b) > 600 {
		return string(b[:300]) + "…" + string(b[len(b)-300:])
	}
	return string(b)
}
