// Package sandbox runs a quarantined skill in a Docker container and judges
// the run: the quarantine's sandbox (quarantine/sandbox in the design).
//
// A Sandbox starts its own sockproxy.Proxy on a unix socket in a private
// folder (mode 0700) in front of the engine, with Profile: the spec's
// skills allowlist plus remove, no network mode but "none", and a bind
// allowlist holding only the staging folder and, when Config.WorkspaceDir
// is set, that folder. Its Docker client (the moby
// client) talks to that socket only, never to the engine's.
//
// # One run
//
// Run reads the skill's manifest (python only; every network host it
// declares must be covered by Config.EgressAllow, else the run is refused
// with T406 before a container exists), copies the files
// into StagingDir/<run>/skill as world-readable files (the quarantined copy
// is 0600 and the container user could not read it), hashes the copy and
// compares it with Request.Hash, and creates a container with:
// NetworkMode none, a read-only root, a tmpfs at /tmp (nosuid, nodev,
// noexec, ScratchBytes), CapDrop ALL, no-new-privileges, user 65534:65534,
// the memory (no swap), CPU and pids limits, the copy bind-mounted
// read-only at /skill, a json-file log capped in size, and the labels
// sockproxy.LabelManaged, LabelSkill and LabelRun. A Request.Workspace (a
// folder beneath Config.WorkspaceDir, not a link) is bind-mounted at
// /workspace, read-only unless WorkspaceWritable, and the skill then runs
// as that folder's owner (never root); only a writable workspace is added
// to the places the supervisor lets the skill write. Output is followed while
// the skill runs; past MaxOutputBytes (stdout and stderr together) or
// Timeout the container is killed. The container is always force-removed
// and the copy deleted, on a context of their own, so a cancelled caller
// leaves nothing behind.
//
// # Network
//
// The container never has a network interface besides loopback. A skill
// that declares hosts gets, for its run only, an egress.Proxy that admits
// exactly those hosts (on the ports Config.EgressAllow covers; no
// loopback, private or link-local address unless Config.EgressAllowAddrs
// holds it) served on a unix socket in the run's staging folder, mounted
// read-only at EgressMount. The supervisor relays EgressProxyAddr on the
// container's loopback to that socket, HTTP_PROXY and HTTPS_PROXY point
// there, and the audit hooks let the skill connect to that address only.
// Every request lands in Result.Egress; a refused one is evidence of kind
// EvidenceEgress, a security violation.
//
// # Inside the container
//
// The command is python3 -I -S -B running a small supervisor (supervisor.py,
// embedded) as PID 1, before any skill code:
//
//  1. Isolation self-check: only the loopback interface in /proc/net/dev,
//     the root file system not writable, PID 1 of its own PID namespace (the
//     host's namespace would give another PID), not root, no capabilities in
//     any set, no_new_privs set, a seccomp filter. It prints
//     TALOS-ISOLATION-OK as the first line of stdout, or
//     TALOS-ISOLATION-FAIL and the problems and exits. A run whose first
//     line is not the OK line is never trusted (OutcomeIsolation).
//  2. The skill runs in a forked child under Python audit hooks (PEP 578,
//     which Python code cannot remove) that refuse and report network use,
//     name lookups, the Docker socket, sensitive files (/etc/shadow,
//     /proc/1/…, /root/, …), opening for writing anything outside /tmp,
//     running programs when the manifest does not declare subprocess, and
//     ctypes. The image has no ctypes module anyway.
//  3. When the child ends, the supervisor kills whatever processes are
//     left (it is PID 1, so kill(-1) reaches every other process of the
//     container) and notes that they outlived the skill, reads the pids
//     and memory cgroups' failure counters and whether /tmp is full, and
//     prints one closing line TALOS-END with the exit status and the
//     evidence.
//
// The supervisor ends the skill itself a little before Timeout (so the
// counters and evidence are still reported), and at once when the pids
// cgroup refuses a fork (a fork bomb is over in under a second); the
// sandbox kills the container at Timeout whatever happens inside.
//
// The kernel enforces the isolation; the hooks only make attempts visible.
// They can be evaded (for example _posixsubprocess.fork_exec starts a
// program without an audit event, and a program started by a skill that
// declares subprocess runs without hooks): such attempts are still
// contained by the container, but may end as an exception or even a clean
// run instead of a security strike. A skill can fake evidence against
// itself (which only earns it a strike) but not the first line, which is
// written before its code is loaded.
//
// # Verdicts
//
// Classify maps an Observation to a Verdict: isolation not verified or a
// forbidden action is strikes.Security; the memory limit, the pids limit,
// the output cap or a full /tmp is strikes.Resource; processes left behind
// is strikes.Security; the time limit is strikes.Timeout; a non-zero exit or
// an unhandled exception is strikes.Exception. The caller feeds
// Result.RunResult() to quarantine.Manager.FinishRun and, when
// Result.Failure() reports one, the strikes.Failure to
// strikes.Tracker.Record. Run
// returns an error only when the run could not be judged (then call
// quarantine.Manager.InterruptRun).
package sandbox
