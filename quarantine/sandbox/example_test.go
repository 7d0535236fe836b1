package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

// Classify turns what a run produced into the strike it earns: here a skill
// that tried to open a network connection and then crashed is a security
// violation, not an exception, and one that hit the pids limit and ran out
// of time is a resource violation.
func ExampleClassify() {
	for _, o := range []sandbox.Observation{
		{IsolationOK: true, Ended: true},
		{IsolationOK: true, Ended: true, ExitCode: 1,
			Evidence: []sandbox.Evidence{{Kind: sandbox.EvidenceNetwork, Detail: "('10.0.0.1', 80)"}}},
		{IsolationOK: true, Ended: true, ExitCode: 137, Signal: 9, PidsLimitHit: true, TimedOut: true},
		{IsolationOK: true, Ended: true, ExitCode: 137, Signal: 9, TimedOut: true},
		{IsolationOK: true, Ended: true, ExitCode: 1},
		{IsolationProblem: "the root filesystem is writable"},
	} {
		v := sandbox.Classify(o)
		fmt.Printf("%-9s %-20q %s\n", v.Outcome, v.Strike, v.Reason)
	}
	// Output:
	// clean     ""                   exited with status 0
	// security  "security_violation" forbidden action: network ('10.0.0.1', 80)
	// pids      "resource_violation" hit the process limit
	// timeout   "timeout"            ran past the time limit
	// exit      "unhandled_exception" exited with status 1
	// isolation "security_violation" isolation not verified: the root filesystem is writable
}

// A sandbox in front of the local engine runs a quarantined skill; the
// caller records res.RunResult() with quarantine.Manager.FinishRun and,
// when res.Verdict.Strike is set, a strike with strikes.Tracker.Record. A
// skill whose manifest asks for a host the operator has not approved
// (Config.EgressAllow) is refused before any container is made (so this
// example needs no engine).
func ExampleSandbox_Run() {
	dir, _ := os.MkdirTemp("", "example-skill-")
	defer os.RemoveAll(dir)
	_ = os.WriteFile(filepath.Join(dir, "skill.yaml"), []byte(
		"id: weather_report\nversion: 1.2.0\nlanguage: python\nentry: main.py\ncapabilities:\n  network: [api.weather.gov]\n"), 0o600)
	_ = os.WriteFile(filepath.Join(dir, "main.py"), []byte("print('sunny')\n"), 0o600)

	sb, err := sandbox.New(sandbox.Config{DockerHost: "unix:///var/run/docker.sock", Image: "talos/python:1"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close()
	res, err := sb.Run(context.Background(), sandbox.Request{Dir: dir})
	if err != nil {
		fmt.Println("no verdict:", err) // the caller calls quarantine.Manager.InterruptRun
		return
	}
	fmt.Println(res.Verdict.Outcome, res.Verdict.Strike, res.RunResult().Reason)
	// Output:
	// no verdict: T406 POLICY_DENIED: sandbox.Run: weather_report@1.2.0 declares network hosts the operator has not approved: api.weather.gov; approve them (the daemon reads TALOS_HOME/config/web-allowlist.txt) or remove them from capabilities.network
}
