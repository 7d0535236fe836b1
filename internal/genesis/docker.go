package genesis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/sockproxy"
)

// DockerControl is the skill id of the genesis skill that lists, inspects,
// starts and stops the containers Talos manages.
const DockerControl = "docker_control"

// Defaults of DockerConfig.
const (
	// DefaultDockerStopTimeout is how long a stopped container gets to exit
	// after SIGTERM before the engine kills it.
	DefaultDockerStopTimeout = 10 * time.Second
	// DefaultDockerCallTimeout bounds one engine call (a stop waits for
	// the container on top of it).
	DefaultDockerCallTimeout = 30 * time.Second
	// MaxDockerContainers is how many containers a list returns at most.
	MaxDockerContainers = 200
)

// Docker actions of docker_control.
const (
	DockerList    = "list"
	DockerInspect = "inspect"
	DockerStart   = "start"
	DockerStop    = "stop"
)

// containerRef is a container name or ID as the engine accepts it.
var containerRef = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// DockerConfig configures a DockerEngine.
type DockerConfig struct {
	// DockerHost is the engine: unix:///path/docker.sock or tcp://host:port.
	DockerHost string
	// StopTimeout is how long a container gets between SIGTERM and
	// SIGKILL on stop, in whole seconds; 0 means DefaultDockerStopTimeout.
	StopTimeout time.Duration
	// Audit receives the proxy's records of denied and allowed
	// state-changing calls (tier-1 audit); nil discards.
	Audit *slog.Logger
	// Logger receives operational messages; nil discards.
	Logger *slog.Logger
}

// DockerEngine makes docker_control's calls on the Docker engine through
// a socket proxy of its own that serves sockproxy.DockerControlProfile on a
// unix socket in a private folder: lists see only containers labelled
// talos.managed=true, and inspect, start and stop of any other container
// are refused by the proxy (code T406). It can do nothing else (no create,
// logs, exec, kill or remove).
type DockerEngine struct {
	cfg   DockerConfig
	proxy *sockproxy.Private
	hc    *http.Client
	once  sync.Once
}

// Container is what docker_control reports of one container. It holds no
// environment, command, mounts or network settings, which may carry
// secrets.
type Container struct {
	ID         string
	Name       string
	Image      string
	State      string // created, running, exited, …
	Status     string // list: the engine's "Up 3 minutes"
	ExitCode   int
	StartedAt  string // inspect, RFC 3339
	FinishedAt string // inspect, RFC 3339
	Labels     map[string]string
}

// NewDockerEngine checks cfg and starts the proxy; Close stops it.
func NewDockerEngine(cfg DockerConfig) (*DockerEngine, error) {
	const op = "genesis.NewDockerEngine"
	var errs []error
	if cfg.DockerHost == "" {
		errs = append(errs, errors.New("DockerHost is empty: want unix:///path/docker.sock or tcp://host:port"))
	}
	if cfg.StopTimeout < 0 || cfg.StopTimeout%time.Second != 0 || cfg.StopTimeout > time.Hour {
		errs = append(errs, fmt.Errorf("StopTimeout %v: want 0 (the default %v) or whole seconds up to 1h", cfg.StopTimeout, DefaultDockerStopTimeout))
	}
	if len(errs) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, op, "invalid docker_control configuration", errors.Join(errs...))
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultDockerStopTimeout
	}
	proxy, err := sockproxy.ServePrivate(sockproxy.Config{Upstream: cfg.DockerHost, Profile: sockproxy.DockerControlProfile(),
		Audit: cfg.Audit, Logger: cfg.Logger}, "talos-docker-control-")
	if err != nil {
		return nil, err
	}
	sock := proxy.Socket()
	var dialer net.Dialer
	tr := &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "unix", sock)
		},
		MaxIdleConns: 2,
	}
	d := &DockerEngine{cfg: cfg, proxy: proxy, hc: &http.Client{Transport: tr}}
	return d, nil
}

// Close stops the proxy.
func (d *DockerEngine) Close() error {
	var err error
	d.once.Do(func() {
		d.hc.CloseIdleConnections()
		err = d.proxy.Close()
	})
	return err
}

// CheckContainerRef refuses a container reference that is not a name or
// ID the engine accepts (code T015).
func CheckContainerRef(ref string) error {
	if !containerRef.MatchString(strings.TrimPrefix(ref, "/")) {
		return talos.Errorf(talos.CodeInputInvalid, "genesis.CheckContainerRef",
			"container %s refused: want a container name or ID ([a-zA-Z0-9][a-zA-Z0-9_.-], at most 128 characters)", redact.Value(ref))
	}
	return nil
}

// call sends one request through the proxy and decodes a JSON answer into
// out (when out is not nil).
func (d *DockerEngine) call(ctx context.Context, op, method, path string, out any) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultDockerCallTimeout+d.cfg.StopTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, "http://docker"+path, nil)
	if err != nil {
		return talos.E(talos.CodeDocker, op, "cannot build the engine request", err)
	}
	resp, err := d.hc.Do(req)
	if err != nil {
		return talos.E(talos.CodeDocker, op, "the Docker engine did not answer through docker_control's socket proxy", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return talos.E(talos.CodeDocker, op, "reading the engine's answer failed", err)
	}
	switch {
	case resp.StatusCode == http.StatusForbidden:
		return talos.Errorf(talos.CodePolicyDenied, op, "refused by the socket proxy: %s (docker_control sees and touches only containers labelled %s=%s)",
			engineMessage(body), sockproxy.LabelManaged, sockproxy.LabelManagedValue)
	case resp.StatusCode == http.StatusNotFound:
		return talos.Errorf(talos.CodeInputInvalid, op, "no such container: %s", engineMessage(body))
	case resp.StatusCode == http.StatusNotModified:
		return nil // already started or stopped
	case resp.StatusCode >= 300:
		return talos.Errorf(talos.CodeDocker, op, "the engine answered %d: %s", resp.StatusCode, engineMessage(body))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return talos.E(talos.CodeDocker, op, "the engine's answer is not the JSON expected", err)
	}
	return nil
}

func engineMessage(body []byte) string {
	var m struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != "" {
		return redact.Value(m.Message)
	}
	return redact.Value(strings.TrimSpace(string(body)))
}

// List returns the Talos-labelled containers, running or not, sorted by
// name, at most MaxDockerContainers.
func (d *DockerEngine) List(ctx context.Context) ([]Container, error) {
	var raw []struct {
		ID     string            `json:"Id"`
		Names  []string          `json:"Names"`
		Image  string            `json:"Image"`
		State  string            `json:"State"`
		Status string            `json:"Status"`
		Labels map[string]string `json:"Labels"`
	}
	if err := d.call(ctx, "genesis.DockerEngine.List", http.MethodGet, "/containers/json?all=1&limit="+strconv.Itoa(MaxDockerContainers), &raw); err != nil {
		return nil, err
	}
	out := make([]Container, 0, len(raw))
	for _, c := range raw {
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, Container{ID: c.ID, Name: name, Image: c.Image, State: c.State, Status: c.Status, Labels: c.Labels})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Inspect returns one Talos-labelled container.
func (d *DockerEngine) Inspect(ctx context.Context, ref string) (Container, error) {
	if err := CheckContainerRef(ref); err != nil {
		return Container{}, err
	}
	var raw struct {
		ID    string `json:"Id"`
		Name  string `json:"Name"`
		State struct {
			Status     string `json:"Status"`
			ExitCode   int    `json:"ExitCode"`
			StartedAt  string `json:"StartedAt"`
			FinishedAt string `json:"FinishedAt"`
		} `json:"State"`
		Config struct {
			Image  string            `json:"Image"`
			Labels map[string]string `json:"Labels"`
		} `json:"Config"`
	}
	if err := d.call(ctx, "genesis.DockerEngine.Inspect", http.MethodGet, "/containers/"+strings.TrimPrefix(ref, "/")+"/json", &raw); err != nil {
		return Container{}, err
	}
	return Container{ID: raw.ID, Name: strings.TrimPrefix(raw.Name, "/"), Image: raw.Config.Image, State: raw.State.Status,
		ExitCode: raw.State.ExitCode, StartedAt: raw.State.StartedAt, FinishedAt: raw.State.FinishedAt, Labels: raw.Config.Labels}, nil
}

// Start starts a Talos-labelled container (nothing happens when it runs
// already).
func (d *DockerEngine) Start(ctx context.Context, ref string) error {
	if err := CheckContainerRef(ref); err != nil {
		return err
	}
	return d.call(ctx, "genesis.DockerEngine.Start", http.MethodPost, "/containers/"+strings.TrimPrefix(ref, "/")+"/start", nil)
}

// Stop stops a Talos-labelled container: SIGTERM, then SIGKILL after
// StopTimeout (nothing happens when it is not running).
func (d *DockerEngine) Stop(ctx context.Context, ref string) error {
	if err := CheckContainerRef(ref); err != nil {
		return err
	}
	secs := strconv.Itoa(int(d.cfg.StopTimeout / time.Second))
	return d.call(ctx, "genesis.DockerEngine.Stop", http.MethodPost, "/containers/"+strings.TrimPrefix(ref, "/")+"/stop?t="+secs, nil)
}

// Docker runs one docker_control action (DockerList, DockerInspect,
// DockerStart or DockerStop; ref names the container for the last three)
// and returns the skill's report for the model. Talos makes the engine
// calls through the DockerEngine's proxy (start and stop are followed by
// an inspect); the skill, in a fresh container without network or Docker
// access, turns the answer into text. A bad request is refused before the
// engine is called (code T015); a container without the Talos label is
// refused by the proxy (code T406).
func (r *Runner) Docker(ctx context.Context, action, ref string) (string, error) {
	const op = "genesis.Runner.Docker"
	s, err := r.skill(op, DockerControl)
	if err != nil {
		return "", err
	}
	if r.docker == nil || r.dockerDir == "" {
		return "", talos.Errorf(talos.CodePolicyDenied, op, "docker_control has no Docker engine: set TALOS_DOCKER_HOST")
	}
	var problems []error
	switch action {
	case DockerList:
		if ref != "" {
			problems = append(problems, fmt.Errorf("container %s: list takes no container", redact.Value(ref)))
		}
	case DockerInspect, DockerStart, DockerStop:
		if err := CheckContainerRef(ref); err != nil {
			problems = append(problems, err)
		}
	default:
		problems = append(problems, fmt.Errorf("action %s: want %s, %s, %s or %s", redact.Value(action), DockerList, DockerInspect, DockerStart, DockerStop))
		if ref != "" {
			if err := CheckContainerRef(ref); err != nil {
				problems = append(problems, err)
			}
		}
	}
	if len(problems) > 0 {
		return "", talos.E(talos.CodeInputInvalid, op, "docker_control request refused", joinErrs(problems))
	}
	var cs []Container
	switch action {
	case DockerList:
		cs, err = r.docker.List(ctx)
	case DockerStart:
		err = r.docker.Start(ctx, ref)
	case DockerStop:
		err = r.docker.Stop(ctx, ref)
	}
	if err == nil && action != DockerList {
		var c Container
		c, err = r.docker.Inspect(ctx, ref)
		cs = []Container{c}
	}
	if err != nil {
		return "", err
	}
	dir, err := handOver(op, r.dockerDir, "answer-", "answer", encodeContainers(cs))
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	res, err := r.sb.Run(ctx, sandbox.Request{Dir: s.Record.ActivePath, Hash: s.Record.Hash, Args: []string{action}, Workspace: dir})
	if err != nil {
		return "", err
	}
	if !res.Verdict.Passed() {
		return "", talos.Errorf(talos.CodeSkillSandbox, op, "docker_control failed: %s", res.Verdict.Reason)
	}
	return strings.TrimRight(string(res.Stdout), "\n"), nil
}

// encodeContainers writes the skill's input: one line per container, every
// value base64 so nothing in a name or label can break the format.
func encodeContainers(cs []Container) []byte {
	var b strings.Builder
	for _, c := range cs {
		keys := make([]string, 0, len(c.Labels))
		for k := range c.Labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var labels strings.Builder
		for _, k := range keys {
			labels.WriteString(k + "=" + c.Labels[k] + "\n")
		}
		fmt.Fprintf(&b, "container %s %s %s %s %s %d %s %s %s\n", b64(c.ID), b64(c.Name), b64(c.Image), b64(c.State), b64(c.Status),
			c.ExitCode, b64(c.StartedAt), b64(c.FinishedAt), b64(labels.String()))
	}
	return []byte(b.String())
}

// handOver writes data to a file called name in a new folder (prefix…)
// under parent, readable by the sandbox's user, and returns the folder.
func handOver(op, parent, prefix, name string, data []byte) (string, error) {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", talos.E(talos.CodeDirPermissions, op, "cannot create "+parent, err)
	}
	dir, err := os.MkdirTemp(parent, prefix)
	if err != nil {
		return "", talos.E(talos.CodeDirPermissions, op, "cannot create a folder for the skill's input", err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		os.RemoveAll(dir)
		return "", talos.E(talos.CodeDirPermissions, op, "cannot open the input's folder to the sandbox", err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		os.RemoveAll(dir)
		return "", talos.E(talos.CodeDirPermissions, op, "cannot write the skill's input", err)
	}
	return dir, nil
}
