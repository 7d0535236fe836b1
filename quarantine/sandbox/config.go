package sandbox

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/sockproxy"
)

// Defaults. A zero Config field means the default named here.
const (
	// DefaultDockerHost is the engine the sandbox's private socket proxy
	// forwards to: the local engine's socket.
	DefaultDockerHost = "unix:///var/run/docker.sock"

	// DefaultImage is the image skills run in: a Debian bookworm rootfs with
	// python3-minimal, imported locally (no registry is used).
	DefaultImage = "talos/python:1"

	// DefaultMemoryLimit is SANDBOX_MEMORY_LIMIT's default, 512m (allowed
	// 128m–2048m). Swap is not allowed on top of it.
	DefaultMemoryLimit int64 = 512 << 20

	// DefaultCPUQuota is SANDBOX_CPU_QUOTA's default in percent of one CPU,
	// 50 (allowed 10–100).
	DefaultCPUQuota = 50

	// DefaultPidsLimit is SANDBOX_PIDS_LIMIT's default, 50 (allowed
	// 10–200).
	DefaultPidsLimit int64 = 50

	// DefaultTimeout is SANDBOX_TIMEOUT's default, 60 s (allowed 10–300 s): the wall-clock limit of one run, container start included.
	DefaultTimeout = 60 * time.Second

	// DefaultMaxOutputBytes caps what one run may print on stdout and stderr
	// together (the spec gives no number). Past it the container is stopped
	// and the run is a resource violation.
	DefaultMaxOutputBytes int64 = 1 << 20

	// DefaultScratchBytes is the size of the tmpfs at /tmp, the only
	// writable place in the container. Its pages count against the memory
	// limit.
	DefaultScratchBytes int64 = 64 << 20

	// DefaultUser is the unprivileged user and group skills run as
	// (nobody:nogroup).
	DefaultUser = "65534:65534"

	// DefaultEgressMaxBytes caps what one run of a skill with network may
	// send and receive through its egress proxy, both directions together.
	DefaultEgressMaxBytes int64 = 16 << 20

	// StopTimeout bounds the calls that stop and remove a container after a
	// run, timeout or cancellation; they run on a context of their own so a
	// cancelled caller still gets its container removed.
	StopTimeout = 30 * time.Second
)

// Limits on the Config values, from the spec's ranges for SANDBOX_*.
const (
	MinMemoryLimit int64 = 128 << 20
	MaxMemoryLimit int64 = 2048 << 20
	MinCPUQuota          = 10
	MaxCPUQuota          = 100
	MinPidsLimit   int64 = 10
	MaxPidsLimit   int64 = 200
	MinTimeout           = time.Second // the spec says 10 s; tests and the CLI may go lower, never below 1 s
	MaxTimeout           = 300 * time.Second
)

// Config configures a Sandbox. The zero value runs DefaultImage against
// /var/run/docker.sock with the spec's limits, staging skill copies under
// the system's temporary folder.
type Config struct {
	// DockerHost is the Docker engine ("unix:///path/docker.sock" or
	// "tcp://host:port") the sandbox's private socket proxy forwards to. The
	// sandbox's own client only ever talks to that proxy. Empty means
	// DefaultDockerHost.
	DockerHost string

	// Image is the Python image skills run in. Empty means DefaultImage.
	Image string

	// MemoryLimit is the container's memory limit in bytes
	// (SANDBOX_MEMORY_LIMIT); 0 means DefaultMemoryLimit.
	MemoryLimit int64

	// CPUQuota is the share of one CPU in percent (SANDBOX_CPU_QUOTA); 0
	// means DefaultCPUQuota.
	CPUQuota int

	// PidsLimit is the most processes and threads the container may hold
	// (SANDBOX_PIDS_LIMIT); 0 means DefaultPidsLimit.
	PidsLimit int64

	// Timeout is the wall-clock limit of one run (SANDBOX_TIMEOUT); 0 means
	// DefaultTimeout.
	Timeout time.Duration

	// MaxOutputBytes caps stdout and stderr together; 0 means
	// DefaultMaxOutputBytes.
	MaxOutputBytes int64

	// ScratchBytes is the size of the tmpfs at /tmp; 0 means
	// DefaultScratchBytes.
	ScratchBytes int64

	// StagingDir is the host folder where a world-readable copy of each
	// skill is made for the run and bind-mounted read-only (the engine must
	// see the same path, so it must be on the engine's host). It is the only
	// bind source the sandbox's proxy allows. Empty means a folder
	// "talos-sandbox" in os.TempDir().
	StagingDir string

	// User is the user[:group] the skill runs as; it must not be root.
	// Empty means DefaultUser.
	User string

	// WorkspaceDir is the host folder under which Request.Workspace folders
	// must lie; the sandbox's proxy allows bind mounts of it (and of
	// StagingDir) and of nothing else. Empty means no run gets a workspace.
	// Like StagingDir, the engine must see the same path.
	WorkspaceDir string

	// EgressAllow are the hosts the operator approved for skills that
	// declare network access, in egress.Config.Allow's form ("name",
	// "*.name", an IP address, each optionally with ":port"; without a port,
	// 80 and 443). A skill gets only the hosts it declares, and only those
	// this list covers; a run of a skill that declares a host it does not
	// cover is refused. Empty: no skill gets network.
	EgressAllow []string

	// EgressAllowAddrs are address ranges a skill's egress may dial although
	// they are loopback, private or link-local (egress.Config.AllowAddrs):
	// a test server, or an operator's own service on purpose. Empty: none.
	EgressAllowAddrs []netip.Prefix

	// EgressMaxBytes caps the bytes one run may move through its egress
	// proxy, both directions; 0 means DefaultEgressMaxBytes.
	EgressMaxBytes int64
	// Labels are put on every container besides sockproxy.LabelManaged,
	// LabelSkill and LabelRun, which they cannot replace; a host uses one
	// to find its own containers among others on a shared engine. Keys are
	// 1 to 128 characters of a-z, 0-9, '.', '_' and '-', starting with a
	// letter or digit; values are at most 256 printable characters.
	Labels map[string]string

	// Audit receives the proxy's audit records (denials and state-changing
	// calls, tier 1). nil discards.
	Audit *slog.Logger

	// Logger receives operational messages. nil discards.
	Logger *slog.Logger
}

// CheckLabels returns an error for every entry of labels that a container
// cannot carry as an extra label, naming the key or value and what is
// allowed: keys are 1 to 128 characters of a-z, 0-9, '.', '_' and '-',
// starting with a letter or digit, and neither sockproxy.LabelManaged nor
// one of reserved (the labels the caller sets itself); values are at most
// 256 printable characters.
func CheckLabels(labels map[string]string, reserved ...string) []error {
	var errs []error
	bad := func(field string, v any, allowed string) {
		errs = append(errs, fmt.Errorf("%s is %v: %s", field, v, allowed))
	}
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		v := labels[k]
		switch {
		case !labelKey.MatchString(k):
			bad("Labels key", `"`+clip(k, 40)+`"`, "keys are 1 to 128 characters of a-z, 0-9, '.', '_' and '-', starting with a letter or digit")
		case k == sockproxy.LabelManaged || slices.Contains(reserved, k):
			bad("Labels key", `"`+k+`"`, "the sandbox or browser sets this label itself; choose another key")
		case len(v) > 256 || strings.IndexFunc(v, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0:
			bad("Labels["+k+"]", `"`+clip(v, 40)+`"`, "values are at most 256 printable characters")
		}
	}
	return errs
}

// labelKey is what a key of Config.Labels may look like.
var labelKey = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,127}$`)

// withDefaults returns cfg with every zero field set to its default, or an
// error naming every invalid field.
func (cfg Config) withDefaults(tmp string) (Config, error) {
	if cfg.DockerHost == "" {
		cfg.DockerHost = DefaultDockerHost
	}
	if cfg.Image == "" {
		cfg.Image = DefaultImage
	}
	if cfg.MemoryLimit == 0 {
		cfg.MemoryLimit = DefaultMemoryLimit
	}
	if cfg.CPUQuota == 0 {
		cfg.CPUQuota = DefaultCPUQuota
	}
	if cfg.PidsLimit == 0 {
		cfg.PidsLimit = DefaultPidsLimit
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.MaxOutputBytes == 0 {
		cfg.MaxOutputBytes = DefaultMaxOutputBytes
	}
	if cfg.ScratchBytes == 0 {
		cfg.ScratchBytes = DefaultScratchBytes
	}
	if cfg.StagingDir == "" {
		cfg.StagingDir = filepath.Join(tmp, "talos-sandbox")
	}
	if cfg.User == "" {
		cfg.User = DefaultUser
	}
	if cfg.EgressMaxBytes == 0 {
		cfg.EgressMaxBytes = DefaultEgressMaxBytes
	}
	var errs []error
	bad := func(field string, v any, allowed string) {
		errs = append(errs, fmt.Errorf("%s is %v: %s", field, v, allowed))
	}
	if cfg.MemoryLimit < MinMemoryLimit || cfg.MemoryLimit > MaxMemoryLimit {
		bad("MemoryLimit", cfg.MemoryLimit, fmt.Sprintf("allowed are %d to %d bytes (128m–2048m)", MinMemoryLimit, MaxMemoryLimit))
	}
	if cfg.CPUQuota < MinCPUQuota || cfg.CPUQuota > MaxCPUQuota {
		bad("CPUQuota", cfg.CPUQuota, fmt.Sprintf("allowed are %d to %d percent", MinCPUQuota, MaxCPUQuota))
	}
	if cfg.PidsLimit < MinPidsLimit || cfg.PidsLimit > MaxPidsLimit {
		bad("PidsLimit", cfg.PidsLimit, fmt.Sprintf("allowed are %d to %d", MinPidsLimit, MaxPidsLimit))
	}
	if cfg.Timeout < MinTimeout || cfg.Timeout > MaxTimeout {
		bad("Timeout", cfg.Timeout, fmt.Sprintf("allowed are %v to %v", MinTimeout, MaxTimeout))
	}
	if cfg.MaxOutputBytes < 1024 || cfg.MaxOutputBytes > 64<<20 {
		bad("MaxOutputBytes", cfg.MaxOutputBytes, "allowed are 1024 to 67108864 bytes")
	}
	if cfg.ScratchBytes < 1<<20 || cfg.ScratchBytes > cfg.MemoryLimit {
		bad("ScratchBytes", cfg.ScratchBytes, "allowed are 1 MiB up to MemoryLimit")
	}
	if !filepath.IsAbs(cfg.StagingDir) || filepath.Clean(cfg.StagingDir) != cfg.StagingDir || cfg.StagingDir == "/" {
		bad("StagingDir", fmt.Sprintf("%q", clip(cfg.StagingDir, 120)), "it must be an absolute, clean path other than /")
	}
	if cfg.WorkspaceDir != "" && (!filepath.IsAbs(cfg.WorkspaceDir) || filepath.Clean(cfg.WorkspaceDir) != cfg.WorkspaceDir || cfg.WorkspaceDir == "/") {
		bad("WorkspaceDir", fmt.Sprintf("%q", clip(cfg.WorkspaceDir, 120)), "it must be empty or an absolute, clean path other than /")
	}
	if u, _, _ := cutColon(cfg.User); u == "" || u == "0" || u == "root" {
		bad("User", fmt.Sprintf("%q", clip(cfg.User, 40)), "name an unprivileged user such as 65534:65534 (never root)")
	}
	if cfg.EgressMaxBytes < 0 {
		bad("EgressMaxBytes", cfg.EgressMaxBytes, "allowed are 0 (the default) or more")
	}
	if _, err := egress.New(egress.Config{Allow: cfg.EgressAllow}, nil); err != nil {
		errs = append(errs, fmt.Errorf("EgressAllow: %w", errors.Unwrap(err)))
	}
	errs = append(errs, CheckLabels(cfg.Labels, LabelSkill, LabelRun)...)
	if len(errs) > 0 {
		return cfg, talos.E(talos.CodeConfigInvalid, "sandbox.New", "invalid sandbox configuration", errors.Join(errs...))
	}
	return cfg, nil
}

func cutColon(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// clip shortens s to at most n bytes and escapes control characters.
func clip(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "…"
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == 0x7f {
			b = append(b, fmt.Sprintf("\\x%02x", c)...)
			continue
		}
		b = append(b, c)
	}
	return string(b)
}
