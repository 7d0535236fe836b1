package sandbox

import (
	"context"
	"crypto/rand"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/sockproxy"
)

//go:embed supervisor.py
var supervisorScript string

// Paths inside the container.
const (
	SkillMount     = "/skill"     // the skill's files, read-only
	ScratchMount   = "/tmp"       // tmpfs, writable
	WorkspaceMount = "/workspace" // Request.Workspace, read-only unless WorkspaceWritable
)

// EnvWritable is the variable that tells the supervisor inside the
// container which folder besides /tmp a skill may write to (set only for a
// writable workspace).
const EnvWritable = "TALOS_SANDBOX_WRITABLE"

// Labels the sandbox puts on its containers besides sockproxy.LabelManaged.
const (
	LabelSkill = "talos.sandbox.skill" // "id@version"
	LabelRun   = "talos.sandbox.run"   // the run's ID
)

// Profile returns the socket-proxy profile the sandbox's private proxy
// serves: sockproxy.SkillsProfile() plus remove (so a container is always
// removed, which the spec's list forgets; the proxy still allows it only for
// Talos-labelled containers) and a bind allowlist holding only stagingDir
// and the workspace folders given (Config.WorkspaceDir, when set).
func Profile(stagingDir string, workspaces ...string) sockproxy.Profile {
	p := sockproxy.SkillsProfile()
	p.Ops = append(p.Ops, sockproxy.OpRemove)
	p.BindAllowlist = append([]string{stagingDir}, workspaces...)
	p.NetworkModes = []string{"none"}
	return p
}

func profileOf(cfg Config) sockproxy.Profile {
	if cfg.WorkspaceDir != "" {
		return Profile(cfg.StagingDir, cfg.WorkspaceDir)
	}
	return Profile(cfg.StagingDir)
}

// Sandbox runs skills in containers through its own socket proxy.
type Sandbox struct {
	cfg   Config
	log   *slog.Logger
	cli   *client.Client
	proxy *sockproxy.Private
	// operator is Config.EgressAllow, for checking declared hosts.
	operator *egress.Proxy
	once     sync.Once
	// deadline gives the supervisor's own deadline for a Timeout (tests
	// replace it to reach the sandbox's hard limit).
	deadline func(time.Duration) time.Duration
}

// New checks cfg, starts a socket proxy with Profile(cfg.StagingDir) in
// front of cfg.DockerHost on a unix socket in a private folder (mode 0700),
// and returns a Sandbox whose Docker client talks only to that socket. It
// does not contact the engine; Ping does. Close stops the proxy.
func New(cfg Config) (*Sandbox, error) {
	const op = "sandbox.New"
	cfg, err := cfg.withDefaults(os.TempDir())
	if err != nil {
		return nil, err
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.StagingDir, 0o755); err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "cannot create the staging folder "+clip(cfg.StagingDir, 120)+": choose a folder Talos may write", err)
	}
	if err := os.Chmod(cfg.StagingDir, 0o755); err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, op, "cannot make the staging folder "+clip(cfg.StagingDir, 120)+" traversable", err)
	}
	operator, err := egress.New(egress.Config{Allow: cfg.EgressAllow}, nil)
	if err != nil {
		return nil, err
	}
	proxy, err := sockproxy.ServePrivate(sockproxy.Config{
		Upstream: cfg.DockerHost,
		Profile:  profileOf(cfg),
		Audit:    cfg.Audit,
		Logger:   cfg.Logger,
	}, "talos-sandbox-proxy-")
	if err != nil {
		return nil, err
	}
	cli, err := client.New(client.WithHost("unix://"+proxy.Socket()), client.WithAPIVersionNegotiation())
	if err != nil {
		_ = proxy.Close()
		return nil, talos.E(talos.CodeDocker, op, "cannot create the Docker client", err)
	}
	s := &Sandbox{cfg: cfg, log: lg, cli: cli, proxy: proxy, operator: operator, deadline: supervisorDeadline}
	return s, nil
}

// Config returns the configuration in use, defaults filled in.
func (s *Sandbox) Config() Config { return s.cfg }

// Close stops the sandbox's proxy and closes its client. Runs in progress
// lose their connection to the engine; call Close after they return.
func (s *Sandbox) Close() error {
	var err error
	s.once.Do(func() {
		_ = s.cli.Close()
		err = s.proxy.Close()
	})
	return err
}

// Ping checks that the engine answers through the proxy and that the image
// exists.
func (s *Sandbox) Ping(ctx context.Context) error {
	const op = "sandbox.Ping"
	if _, err := s.cli.Ping(ctx, client.PingOptions{}); err != nil {
		return talos.E(talos.CodeDocker, op, "the Docker engine at "+clip(s.cfg.DockerHost, 120)+" does not answer through the socket proxy: start it or fix DockerHost", err)
	}
	return nil
}

// Request is one run of a skill.
type Request struct {
	// Dir is the skill's folder (with skill.yaml), normally the quarantined
	// copy from quarantine.Record.Path.
	Dir string
	// Hash, when set, is the content hash the files must have
	// (quarantine.Key.Hash). The staged copy that runs is hashed, so a
	// file changed after the caller's check is refused (code T402).
	Hash string
	// Args are passed to the entry point as sys.argv[1:].
	Args []string
	// RunID names the run in labels and logs; empty means a random one.
	RunID string
	// Workspace, when set, is a host folder equal to or beneath
	// Config.WorkspaceDir, mounted at WorkspaceMount: read-only, or
	// read-write when WorkspaceWritable is true (then the supervisor also
	// lets the skill write there). With a workspace the skill runs as the
	// folder's owner, unless that is root (then as Config.User).
	Workspace         string
	WorkspaceWritable bool
}

// Result is what a run produced and the verdict on it. Feed Verdict to
// quarantine.Manager.FinishRun (Passed, Reason) and, when Verdict.Strike is
// set, to strikes.Tracker.Record (Failure).
type Result struct {
	RunID       string
	ContainerID string
	Skill       string // "id@version"
	Verdict     Verdict
	Observation Observation
	ExitCode    int
	Stdout      []byte // at most Config.MaxOutputBytes together with Stderr, markers removed
	Stderr      []byte
	Truncated   bool // output was cut at MaxOutputBytes
	Duration    time.Duration
	// Egress lists the requests of a skill with network through its egress
	// proxy (at most 256), allowed and refused; a refused one is also
	// Observation evidence of kind EvidenceEgress.
	Egress []egress.Event
}

// RunResult returns the verdict in the form quarantine.Manager.FinishRun
// takes.
func (r Result) RunResult() quarantine.RunResult {
	return quarantine.RunResult{Passed: r.Verdict.Passed(), Reason: r.Verdict.Reason}
}

// Run stages a world-readable copy of the skill, runs its entry point in a
// fresh container (no network, read-only root, tmpfs /tmp, no
// capabilities, no-new-privileges, an unprivileged user, the memory, CPU
// and pids limits, Timeout) through the proxy, and always removes the
// container and the copy, also when ctx is cancelled. A run that happened
// returns a Result and a nil error, whatever the skill did; an error means
// the run could not be judged (bad request, engine unreachable, cancelled):
// the caller should call quarantine.Manager.InterruptRun then.
//
// A skill that declares network hosts gets an egress proxy that admits
// only those hosts (see EgressMount); a declared host not covered by
// Config.EgressAllow refuses the run before a container starts (code T406).
func (s *Sandbox) Run(ctx context.Context, req Request) (Result, error) {
	const op = "sandbox.Run"
	man, err := quarantine.ReadManifest(req.Dir)
	if err != nil {
		return Result{}, err
	}
	if man.Language != quarantine.LanguagePython {
		return Result{}, talos.Errorf(talos.CodePolicyDenied, op, "%s@%s is written in %s: the sandbox runs python only", man.ID, man.Version, man.Language)
	}
	var allow []string
	if len(man.Capabilities.Network) > 0 {
		if allow, err = s.egressAllow(man); err != nil {
			return Result{}, err
		}
	}
	runID := req.RunID
	if runID == "" {
		runID = randomID()
	} else if !validRunID(runID) {
		return Result{}, talos.Errorf(talos.CodeConfigInvalid, op, "RunID %q is not allowed: use 1 to 64 characters of [a-z0-9-]", clip(runID, 80))
	}
	res := Result{RunID: runID, Skill: man.ID + "@" + man.Version}

	stage, err := s.stage(req.Dir, req.Hash, runID)
	if err != nil {
		return res, err
	}
	defer func() {
		if err := os.RemoveAll(filepath.Dir(stage)); err != nil {
			s.log.Warn("sandbox: cannot remove a staged skill copy", "dir", filepath.Dir(stage), "err", err)
		}
	}()

	allowExec := "0"
	if man.Capabilities.Subprocess {
		allowExec = "1"
	}
	binds, env, user, err := s.workspace(req)
	if err != nil {
		return res, err
	}
	var eg *runEgress
	if allow != nil {
		var eb, ee []string
		if eg, eb, ee, err = s.startEgress(filepath.Dir(stage), allow); err != nil {
			return res, err
		}
		defer eg.stop()
		binds, env = append(binds, eb...), append(env, ee...)
	}
	entry := path.Join(SkillMount, filepath.ToSlash(man.Entry))
	cmd := append([]string{"python3", "-I", "-S", "-B", "-c", supervisorScript, entry, allowExec,
		strconv.FormatFloat(s.deadline(s.cfg.Timeout).Seconds(), 'f', 3, 64)}, req.Args...)
	pids := s.cfg.PidsLimit
	cfg := &container.Config{
		Image:           s.cfg.Image,
		Cmd:             cmd,
		User:            user,
		WorkingDir:      SkillMount,
		Env:             append([]string{"HOME=" + ScratchMount, "TMPDIR=" + ScratchMount, "PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}, env...),
		NetworkDisabled: true,
		Labels:          containerLabels(s.cfg.Labels, res.Skill, runID),
	}
	logMax := max(s.cfg.MaxOutputBytes*4, 8<<20)
	hc := &container.HostConfig{
		NetworkMode:    "none",
		ReadonlyRootfs: true,
		CapDrop:        []string{"ALL"},
		SecurityOpt:    []string{"no-new-privileges"},
		Binds:          append([]string{stage + ":" + SkillMount + ":ro"}, binds...),
		Tmpfs:          map[string]string{ScratchMount: fmt.Sprintf("rw,nosuid,nodev,noexec,size=%d,mode=1777", s.cfg.ScratchBytes)},
		IpcMode:        "private",
		LogConfig:      container.LogConfig{Type: "json-file", Config: map[string]string{"max-size": strconv.FormatInt(logMax, 10), "max-file": "2"}},
		Resources: container.Resources{
			Memory:     s.cfg.MemoryLimit,
			MemorySwap: s.cfg.MemoryLimit,
			NanoCPUs:   int64(s.cfg.CPUQuota) * 1e7,
			PidsLimit:  &pids,
		},
	}
	start := time.Now()
	// Create is not cancelled with ctx: an engine that created the container
	// after the client gave up would leave it behind unnamed to us. The
	// container is removed by name if create reports an error anyway.
	name := "talos-skill-" + strings.ReplaceAll(man.ID, "_", "-") + "-" + runID
	cctx, ccancel := context.WithTimeout(context.WithoutCancel(ctx), StopTimeout)
	created, err := s.cli.ContainerCreate(cctx, client.ContainerCreateOptions{Name: name, Config: cfg, HostConfig: hc})
	ccancel()
	if err != nil {
		if !cerrdefs.IsConflict(err) { // a conflict means the name is someone else's
			s.remove(name)
		}
		return res, talos.E(talos.CodeDocker, op, "cannot create the container for "+res.Skill+" (is the image "+clip(s.cfg.Image, 80)+" there?)", err)
	}
	id := created.ID
	res.ContainerID = id
	defer s.remove(id)
	if ctx.Err() != nil {
		return res, cancelled(ctx, res.Skill)
	}

	runCtx, cancelRun := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancelRun()
	overflow := make(chan struct{})
	capt := &capture{max: s.cfg.MaxOutputBytes, over: func() { close(overflow) }}

	if _, err := s.cli.ContainerStart(runCtx, id, client.ContainerStartOptions{}); err != nil {
		if ctx.Err() != nil {
			return res, cancelled(ctx, res.Skill)
		}
		if runCtx.Err() == nil {
			return res, talos.E(talos.CodeDocker, op, "cannot start the container for "+res.Skill, err)
		}
	}
	logsDone := make(chan error, 1)
	go func() {
		rc, err := s.cli.ContainerLogs(runCtx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
		if err != nil {
			logsDone <- err
			return
		}
		defer rc.Close()
		_, err = stdcopy.StdCopy(stream{capt, true}, stream{capt, false}, rc)
		logsDone <- err
	}()
	wait := s.cli.ContainerWait(runCtx, id, client.ContainerWaitOptions{Condition: container.WaitConditionNotRunning})

	var obs Observation
	exited := false
	select {
	case w := <-wait.Result:
		exited = true
		res.ExitCode = int(w.StatusCode)
	case err := <-wait.Error:
		if ctx.Err() != nil {
			return res, cancelled(ctx, res.Skill)
		}
		if runCtx.Err() == nil {
			return res, talos.E(talos.CodeDocker, op, "lost the container of "+res.Skill+" while waiting for it", err)
		}
		obs.TimedOut = true
	case <-runCtx.Done():
		if ctx.Err() != nil {
			return res, cancelled(ctx, res.Skill)
		}
		obs.TimedOut = true
	case <-overflow:
		obs.OutputCapped = true
	}
	if !exited {
		s.stop(id)
	}
	// The log stream ends when the container has stopped; give it a bounded
	// time to drain what was written last.
	select {
	case <-logsDone:
	case <-time.After(5 * time.Second):
		cancelRun()
		<-logsDone
	}
	res.Duration = time.Since(start)

	ictx, icancel := context.WithTimeout(context.WithoutCancel(ctx), StopTimeout)
	defer icancel()
	if info, err := s.cli.ContainerInspect(ictx, id, client.ContainerInspectOptions{}); err == nil && info.Container.State != nil {
		obs.OOMKilled = info.Container.State.OOMKilled
		if !exited {
			res.ExitCode = info.Container.State.ExitCode
		}
	}

	stdout, first, last := capt.split()
	res.Stdout, res.Stderr = stdout, capt.stderr.Bytes()
	res.Truncated = capt.total > capt.max
	if res.Truncated {
		obs.OutputCapped = true
	}
	switch {
	case first == markerOK:
		obs.IsolationOK = true
	case strings.HasPrefix(first, markerFail):
		obs.IsolationProblem = clip(strings.TrimPrefix(first, markerFail), 500)
	}
	if end, ok := parseEnd(last); ok && obs.IsolationOK && !obs.TimedOut && !obs.OutputCapped {
		obs.Ended = true
		obs.ExitCode, obs.Signal = end.exit, end.signal
		obs.PidsLimitHit = end.pidsMax > 0
		obs.OOMKilled = obs.OOMKilled || end.oomKill > 0
		obs.Outlived = end.outlived
		obs.ScratchFull = end.scratchFull
		obs.Evidence = end.evidence
		obs.TimedOut = end.timedOut
	} else {
		obs.ExitCode = res.ExitCode
	}
	if eg != nil {
		var ev []Evidence
		res.Egress, ev = eg.stop()
		obs.Evidence = append(obs.Evidence, ev...)
	}
	res.Observation = obs
	res.Verdict = Classify(obs)
	s.log.InfoContext(ctx, "sandbox run finished", "skill", res.Skill, "run", runID, "outcome", string(res.Verdict.Outcome),
		"strike", string(res.Verdict.Strike), "exit", res.ExitCode, "duration", res.Duration)
	return res, nil
}

// workspace checks req.Workspace and returns the extra binds, environment
// and the user of the run.
func (s *Sandbox) workspace(req Request) (binds, env []string, user string, err error) {
	const op = "sandbox.Run"
	user = s.cfg.User
	if req.Workspace == "" {
		if req.WorkspaceWritable {
			return nil, nil, "", talos.Errorf(talos.CodeConfigInvalid, op, "WorkspaceWritable is set without a Workspace: name the folder to mount")
		}
		return nil, nil, user, nil
	}
	ws, root := req.Workspace, s.cfg.WorkspaceDir
	if root == "" {
		return nil, nil, "", talos.Errorf(talos.CodePolicyDenied, op, "Workspace %q is refused: the sandbox has no WorkspaceDir, so it mounts no workspace", clip(ws, 120))
	}
	if !filepath.IsAbs(ws) || filepath.Clean(ws) != ws || (ws != root && !strings.HasPrefix(ws, root+string(filepath.Separator))) {
		return nil, nil, "", talos.Errorf(talos.CodePolicyDenied, op, "Workspace %q is refused: it must be an absolute, clean path equal to or beneath %s", clip(ws, 120), clip(root, 120))
	}
	st, err := os.Lstat(ws)
	if err != nil || !st.IsDir() {
		return nil, nil, "", talos.E(talos.CodePolicyDenied, op, "Workspace "+clip(ws, 120)+" is not a folder (a link is not accepted): create it", err)
	}
	mode := "ro"
	if req.WorkspaceWritable {
		mode = "rw"
		env = []string{EnvWritable + "=" + WorkspaceMount + "/"}
	}
	if uid, gid, ok := owner(st); ok && uid != 0 {
		user = strconv.Itoa(uid) + ":" + strconv.Itoa(gid)
	}
	return []string{ws + ":" + WorkspaceMount + ":" + mode}, env, user, nil
}

// cancelled is Run's error when ctx ended the run: it wraps ctx.Err(), so
// errors.Is(err, context.Canceled) holds, and carries no code (the skill did
// nothing wrong and the sandbox did not fail).
func cancelled(ctx context.Context, skill string) error {
	return fmt.Errorf("sandbox.Run: the run of %s was cancelled before a verdict; its container is removed: %w", skill, ctx.Err())
}

// supervisorDeadline is when the supervisor inside the container ends the
// skill itself (so it can still report the cgroup counters and evidence):
// a little before Timeout, at which the sandbox kills the container.
func supervisorDeadline(timeout time.Duration) time.Duration {
	return timeout - min(2*time.Second, timeout/5)
}

// stop kills the container at once (stop with a zero grace period), on a
// context of its own.
func (s *Sandbox) stop(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	zero := 0
	if _, err := s.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &zero}); err != nil && !cerrdefs.IsNotFound(err) {
		s.log.Warn("sandbox: cannot stop a container", "container", id, "err", err)
	}
}

// remove force-removes the container (by ID or name), on a context of its
// own so that a cancelled run still cleans up, trying again for up to
// StopTimeout while the engine refuses (a removal already in progress, a
// start still under way).
func (s *Sandbox) remove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
	defer cancel()
	for wait := 50 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		_, err := s.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
		if err == nil || cerrdefs.IsNotFound(err) {
			return
		}
		select {
		case <-ctx.Done():
			s.log.Error("sandbox: cannot remove a container; the zombie hunt will find it by its label", "container", id, "err", err)
			return
		case <-time.After(wait):
		}
	}
}

// stage copies the skill into StagingDir/<run>/skill with folders 0755 and
// files 0644 (the quarantined copy is 0600 in 0700 folders, unreadable for
// the container's user) and checks the copy's hash.
func (s *Sandbox) stage(src, want, runID string) (string, error) {
	const op = "sandbox.Run"
	c, err := quarantine.HashDir(src)
	if err != nil {
		return "", err
	}
	if want != "" && c.Hash != want {
		return "", talos.Errorf(talos.CodeBadSignature, op, "the skill in %s hashes to %s, not the approved %s: it changed; add it again to quarantine", clip(src, 120), c.Hash, clip(want, 64))
	}
	top := filepath.Join(s.cfg.StagingDir, runID)
	dst := filepath.Join(top, "skill")
	if err := os.Mkdir(top, 0o755); err != nil {
		return "", talos.E(talos.CodeSkillSandbox, op, "cannot create the staging folder "+top, err)
	}
	fail := func(what string, err error) (string, error) {
		_ = os.RemoveAll(top)
		return "", talos.E(talos.CodeSkillSandbox, op, what, err)
	}
	if err := os.Mkdir(dst, 0o755); err != nil {
		return fail("cannot create "+dst, err)
	}
	root, err := os.OpenRoot(src)
	if err != nil {
		return fail("cannot open the skill folder "+clip(src, 120), err)
	}
	defer root.Close()
	for _, f := range c.Files {
		rel := filepath.FromSlash(f.Path)
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(rel)), 0o755); err != nil {
			return fail("cannot create a folder in the staged copy", err)
		}
		in, err := root.Open(rel)
		if err != nil {
			return fail("cannot read "+f.Path, err)
		}
		out, err := os.OpenFile(filepath.Join(dst, rel), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			in.Close()
			return fail("cannot write the staged copy of "+f.Path, err)
		}
		_, err = io.Copy(out, io.LimitReader(in, f.Size+1))
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fail("cannot copy "+f.Path, err)
		}
	}
	got, err := quarantine.HashDir(dst)
	if err != nil {
		return fail("cannot hash the staged copy", err)
	}
	if got.Hash != c.Hash {
		_ = os.RemoveAll(top)
		return "", talos.Errorf(talos.CodeBadSignature, op, "the skill in %s changed while it was copied (%s, then %s): run it again", clip(src, 120), c.Hash, got.Hash)
	}
	return dst, nil
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRunID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// containerLabels are the labels of one run's container: extra (checked by
// Config) plus the sandbox's own, which extra cannot replace.
func containerLabels(extra map[string]string, skill, runID string) map[string]string {
	l := maps.Clone(extra)
	if l == nil {
		l = map[string]string{}
	}
	l[sockproxy.LabelManaged] = sockproxy.LabelManagedValue
	l[LabelSkill] = skill
	l[LabelRun] = runID
	return l
}
