package sandbox

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/talos-ironclad/talos/strikes"
)

// Outcome is how a run ended, most serious first when several apply.
type Outcome string

// The outcomes of a run.
const (
	OutcomeClean     Outcome = "clean"     // exit 0, isolation verified, nothing forbidden tried
	OutcomeIsolation Outcome = "isolation" // the self-check inside the container failed or never reported
	OutcomeSecurity  Outcome = "security"  // the skill tried something forbidden (network, a host file, the Docker socket, …)
	OutcomeMemory    Outcome = "memory"    // the kernel killed a process for the memory limit
	OutcomePids      Outcome = "pids"      // a fork or thread failed at the pids limit
	OutcomeOutput    Outcome = "output"    // stdout+stderr passed MaxOutputBytes
	OutcomeScratch   Outcome = "scratch"   // the /tmp scratch space was full at the end
	OutcomeOutlived  Outcome = "outlived"  // processes were still running when the skill's main process ended
	OutcomeTimeout   Outcome = "timeout"   // the run passed Config.Timeout
	OutcomeExit      Outcome = "exit"      // non-zero exit or an unhandled exception
)

// Evidence kinds the supervisor inside the container reports. Each is a
// forbidden action the skill attempted (and that was refused); all of them
// are security violations.
const (
	EvidenceNetwork      = "network"           // connect, bind or send on a socket
	EvidenceResolve      = "resolve"           // a name lookup
	EvidenceDockerSocket = "docker_socket"     // a connection to a Docker socket
	EvidenceSensitive    = "sensitive_file"    // opening /etc/shadow, /proc/1/…, /root/, a Docker socket path, …
	EvidenceWrite        = "write_outside"     // opening for writing anything outside /tmp
	EvidenceExec         = "exec"              // running a program when the manifest does not declare subprocess
	EvidenceHookEvasion  = "hook_evasion"      // ctypes or another way around the audit hooks
	EvidenceSignal       = "signal_supervisor" // signalling PID 1, every process or a process group
)

// Evidence is one forbidden action the skill attempted.
type Evidence struct {
	Kind   string // one of the Evidence… constants
	Detail string // the path, address or call, clipped to 300 bytes
}

// Observation is everything a run produced that decides its verdict.
type Observation struct {
	IsolationOK      bool   // the self-check reported success before any skill code ran
	IsolationProblem string // what the self-check found, when it failed
	Ended            bool   // the supervisor's closing report was read
	ExitCode         int    // the skill's exit code (128+signal when killed)
	Signal           int    // the signal that ended the skill's main process, 0 if none
	TimedOut         bool
	OOMKilled        bool // reported by the engine or by the memory cgroup
	PidsLimitHit     bool // the pids cgroup refused a fork
	OutputCapped     bool
	ScratchFull      bool
	Outlived         bool // processes were left when the main process ended (they were killed)
	Evidence         []Evidence
}

// Verdict is the outcome of a run and the strike it earns.
type Verdict struct {
	Outcome Outcome
	// Strike is the strike type for strikes.Tracker.Record; empty when the
	// run was clean.
	Strike strikes.Type
	// Reason says what happened in one line, for quarantine.RunResult.Reason
	// and the strike's message.
	Reason string
}

// Passed reports whether the run was clean.
func (v Verdict) Passed() bool { return v.Outcome == OutcomeClean }

// Classify maps what a run produced to its verdict. When several things
// happened the most serious wins, in this order: isolation not verified,
// forbidden actions (security), memory, pids, output, scratch full
// (resource), processes left behind (security), timeout, non-zero exit
// (exception). A fork bomb leaves processes behind too; it is a resource
// violation because the pids limit explains them.
func Classify(o Observation) Verdict {
	switch {
	case !o.IsolationOK:
		why := o.IsolationProblem
		if why == "" {
			why = "the isolation self-check did not report before the run ended"
		}
		return Verdict{OutcomeIsolation, strikes.Security, "isolation not verified: " + why}
	case len(o.Evidence) > 0:
		parts := make([]string, 0, len(o.Evidence))
		for i, e := range o.Evidence {
			if i == 5 {
				parts = append(parts, fmt.Sprintf("and %d more", len(o.Evidence)-5))
				break
			}
			parts = append(parts, e.Kind+" "+clip(e.Detail, 80))
		}
		return Verdict{OutcomeSecurity, strikes.Security, "forbidden action: " + strings.Join(parts, "; ")}
	case o.OOMKilled:
		return Verdict{OutcomeMemory, strikes.Resource, "killed at the memory limit"}
	case o.PidsLimitHit:
		return Verdict{OutcomePids, strikes.Resource, "hit the process limit"}
	case o.OutputCapped:
		return Verdict{OutcomeOutput, strikes.Resource, "printed more than the output limit"}
	case o.ScratchFull:
		return Verdict{OutcomeScratch, strikes.Resource, "filled the /tmp scratch space"}
	case o.Outlived:
		return Verdict{OutcomeOutlived, strikes.Security, "left processes running after its main process ended"}
	case o.TimedOut:
		return Verdict{OutcomeTimeout, strikes.Timeout, "ran past the time limit"}
	case !o.Ended:
		return Verdict{OutcomeExit, strikes.Exception, fmt.Sprintf("ended without the supervisor's report (exit %d)", o.ExitCode)}
	case o.ExitCode != 0:
		if o.Signal != 0 {
			return Verdict{OutcomeExit, strikes.Exception, fmt.Sprintf("killed by signal %d", o.Signal)}
		}
		return Verdict{OutcomeExit, strikes.Exception, fmt.Sprintf("exited with status %d", o.ExitCode)}
	}
	return Verdict{OutcomeClean, "", "exited with status 0"}
}

// Marker lines the supervisor writes on stdout.
const (
	markerOK   = "TALOS-ISOLATION-OK"
	markerFail = "TALOS-ISOLATION-FAIL "
	markerEnd  = "TALOS-END "
)

// endReport is the supervisor's closing line.
type endReport struct {
	exit, signal, pidsMax, oomKill  int
	outlived, scratchFull, timedOut bool
	evidence                        []Evidence
}

// parseEnd parses "TALOS-END exit=0 signal=0 … evidence=kind:hex,…".
func parseEnd(line string) (endReport, bool) {
	rest, ok := strings.CutPrefix(line, markerEnd)
	if !ok {
		return endReport{}, false
	}
	var r endReport
	seen := 0
	for _, f := range strings.Fields(rest) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return endReport{}, false
		}
		if k == "evidence" {
			seen++
			for _, item := range strings.Split(v, ",") {
				if item == "" {
					continue
				}
				kind, hx, _ := strings.Cut(item, ":")
				d, err := hex.DecodeString(hx)
				if err != nil || kind == "" {
					return endReport{}, false
				}
				r.evidence = append(r.evidence, Evidence{Kind: kind, Detail: string(d)})
			}
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return endReport{}, false
		}
		switch k {
		case "exit":
			r.exit = n
		case "signal":
			r.signal = n
		case "pids_max":
			r.pidsMax = n
		case "oom_kill":
			r.oomKill = n
		case "outlived":
			r.outlived = n != 0
		case "scratch_full":
			r.scratchFull = n != 0
		case "timed_out":
			r.timedOut = n != 0
		default:
			continue
		}
		seen++
	}
	return r, seen == 8
}

// exceptionNames are the strikes.Failure.ExceptionType values of the
// outcomes that are not a Python exception.
var exceptionNames = map[Outcome]string{
	OutcomeIsolation: "IsolationFailure",
	OutcomeSecurity:  "SecurityViolation",
	OutcomeMemory:    "MemoryLimit",
	OutcomePids:      "PidsLimit",
	OutcomeOutput:    "OutputLimit",
	OutcomeScratch:   "ScratchFull",
	OutcomeOutlived:  "ProcessOutlived",
	OutcomeTimeout:   "Timeout",
	OutcomeExit:      "ExitStatus",
}

// Failure returns the strike to record with strikes.Tracker.Record for this
// run, and false when the run was clean. For an unhandled exception the
// type and message come from the last line of the traceback on stderr
// ("ValueError: bad input" gives ValueError and "bad input"); otherwise the
// type names the outcome (Timeout, MemoryLimit, SecurityViolation, …) and
// the message is the verdict's reason.
func (r Result) Failure() (strikes.Failure, bool) {
	if r.Verdict.Strike == "" {
		return strikes.Failure{}, false
	}
	f := strikes.Failure{
		Type:          r.Verdict.Strike,
		ExceptionType: exceptionNames[r.Verdict.Outcome],
		Message:       r.Verdict.Reason,
		ExecutionID:   r.RunID,
		ContainerID:   r.ContainerID,
	}
	if f.ExceptionType == "" {
		f.ExceptionType = "SandboxFailure"
	}
	if r.Verdict.Outcome == OutcomeExit {
		if typ, msg, ok := lastException(r.Stderr); ok {
			f.ExceptionType, f.Message = typ, msg
		}
	}
	return f, true
}

// lastException finds "Type: message" (or "Type") on the last non-empty
// line of a Python traceback.
func lastException(stderr []byte) (typ, msg string, ok bool) {
	s := strings.TrimRight(string(stderr), "\n ")
	if !strings.Contains(s, "Traceback (most recent call last):") {
		return "", "", false
	}
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	name, rest, _ := strings.Cut(s, ":")
	if name == "" || len(name) > 200 {
		return "", "", false
	}
	for i, c := range name {
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || !(c == '.' || c >= '0' && c <= '9')) {
			return "", "", false
		}
	}
	return name, strings.TrimSpace(rest), true
}
