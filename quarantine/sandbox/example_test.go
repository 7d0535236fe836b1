package sandbox_test

import (
	"context"
	"fmt"

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
// caller records the verdict with quarantine.Manager.FinishRun and, when
// there is a strike, strikes.Tracker.Record. (Not run: it needs an engine
// and the Python image.)
func ExampleSandbox_Run() {
	sb, err := sandbox.New(sandbox.Config{
		DockerHost: "unix:///var/run/docker.sock",
		Image:      "talos/python:1",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer sb.Close()
	res, err := sb.Run(context.Background(), sandbox.Request{Dir: "/var/lib/talos/skills/quarantine/weather_report-1.2.0"})
	if err != nil {
		fmt.Println("no verdict:", err) // quarantine.Manager.InterruptRun
		return
	}
	fmt.Println(res.Verdict.Outcome, res.Verdict.Strike, res.RunResult().Reason)
}
