package sockproxy

import (
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
)

// Defaults. A zero Config field means the default named here.
const (
	// DefaultUpstream is the Docker socket the proxy forwards to.
	DefaultUpstream = "unix:///var/run/docker.sock"

	// DefaultMaxBodyBytes caps a create or update body. A real create body
	// is a few KiB.
	DefaultMaxBodyBytes = 1 << 20

	// DefaultRateLimit is the sustained number of requests per second one
	// client may send (DOCKER_SOCKET_PROXY_RATE_LIMIT=100, given without a
	// unit: we read it as per second because a skill run issues short
	// bursts of polls).
	DefaultRateLimit = 100

	// DefaultRateBurst is the token-bucket depth: how many requests a client
	// may send at once after being idle.
	DefaultRateBurst = 100

	// DefaultInspectCacheTTL is how long the proxy remembers which container a
	// name or ID prefix resolved to and whether it carries the Talos label.
	// Labels never change after create, so the only risk of caching is a name
	// re-used by a new container, which the short TTL bounds (and the proxy
	// forwards the resolved full ID, so a stale entry can only yield a 404).
	DefaultInspectCacheTTL = 2 * time.Second

	// DefaultMinAPIVersion is the oldest API version prefix accepted. Older
	// versions have unsafe semantics (a HostConfig body on start before 1.24);
	// the moby client needs 1.40 or newer anyway.
	DefaultMinAPIVersion = "1.40"

	// LabelManaged is the label the proxy puts on every container it creates
	// and requires on every container a per-container call names (the
	// container manager labels its containers talos.managed=true). The zombie hunt
	// and the respawn manager select on it too.
	LabelManaged = "talos.managed"

	// LabelManagedValue is the value of LabelManaged.
	LabelManagedValue = "true"
)

// Op names one kind of Docker API call the proxy understands. Everything
// that is not one of these is denied.
type Op string

// The operations. Each maps to one Docker endpoint (with or without a
// /vX.Y version prefix).
const (
	OpPing    Op = "ping"    // GET|HEAD /_ping
	OpVersion Op = "version" // GET /version
	OpList    Op = "list"    // GET /containers/json (filtered to labelled containers)
	OpCreate  Op = "create"  // POST /containers/create (body inspected, label injected)
	OpInspect Op = "inspect" // GET /containers/{id}/json
	OpStart   Op = "start"   // POST /containers/{id}/start
	OpStop    Op = "stop"    // POST /containers/{id}/stop
	OpWait    Op = "wait"    // POST /containers/{id}/wait (long-lived)
	OpLogs    Op = "logs"    // GET /containers/{id}/logs (streams when following)
	OpKill    Op = "kill"    // POST /containers/{id}/kill
	OpRemove  Op = "remove"  // DELETE /containers/{id}
	OpUpdate  Op = "update"  // POST /containers/{id}/update (body inspected)
	OpAttach  Op = "attach"  // POST /containers/{id}/attach (hijacked stream)
)

// allOps lists every operation the proxy knows, in a stable order.
var allOps = []Op{OpPing, OpVersion, OpList, OpCreate, OpInspect, OpStart, OpStop, OpWait, OpLogs, OpKill, OpRemove, OpUpdate, OpAttach}

// Ops returns every operation the proxy knows.
func Ops() []Op { return slices.Clone(allOps) }

// Profile is the policy one client (one listener) gets. Everything not
// granted is denied.
type Profile struct {
	// Name identifies the profile in audit records.
	Name string

	// Ops are the operations the client may call. Per-container operations
	// are further limited to containers carrying LabelManaged.
	Ops []Op

	// BindAllowlist lists host directories that may be bind-mounted (in
	// HostConfig.Binds or Mounts of type bind), each an absolute, clean path;
	// a bind source must equal one of them or lie beneath one. Empty (the
	// default) means no bind mount at all.
	BindAllowlist []string

	// AllowNamedVolumes lets a container use named volumes (Binds "name:/dst"
	// or Mounts of type volume with a source). Off by default: a named volume
	// created elsewhere with the local driver's bind options is a host mount.
	AllowNamedVolumes bool

	// NetworkModes lists the HostConfig.NetworkMode values (and
	// NetworkingConfig networks) allowed. Empty means DefaultNetworkModes.
	// "host" and "container:…" are never allowed.
	NetworkModes []string

	// CapAdd lists capabilities a container may add (for example CHOWN for
	// the spec's browser container). Empty (the default) denies any CapAdd.
	CapAdd []string
}

// defaultNetworkModes are the network modes a profile allows when it lists
// none: no network, or Docker's default bridge.
var defaultNetworkModes = []string{"none", "bridge", "default"}

// DefaultNetworkModes returns the network modes allowed when a profile lists none.
func DefaultNetworkModes() []string { return slices.Clone(defaultNetworkModes) }

// Profile names of the built-in profiles.
const (
	ProfileNameSkills        = "skills"
	ProfileNameMaintenance   = "maintenance"
	ProfileNameDockerControl = "docker_control"
)

// SkillsProfile is the allowlist for skills: ping, version, list,
// inspect, create, start, stop, wait and logs. Logs may hold secrets the
// container printed; that is accepted.
func SkillsProfile() Profile {
	return Profile{
		Name: ProfileNameSkills,
		Ops:  []Op{OpPing, OpVersion, OpList, OpInspect, OpCreate, OpStart, OpStop, OpWait, OpLogs},
	}
}

// MaintenanceProfile is SkillsProfile plus kill and remove, for the zombie
// hunt and the respawn manager, which need them; allowed for labelled
// containers only.
func MaintenanceProfile() Profile {
	p := SkillsProfile()
	p.Name = ProfileNameMaintenance
	p.Ops = append(p.Ops, OpKill, OpRemove)
	return p
}

// DockerControlProfile is the allowlist for an agent that looks after its
// containers: ping, version, list, inspect, start and stop, nothing else
// (no create, logs, kill, remove or attach). Lists are filtered to
// containers carrying LabelManaged and per-container calls are allowed for
// such containers only, so an unlabelled container can be neither seen
// nor touched.
func DockerControlProfile() Profile {
	return Profile{
		Name: ProfileNameDockerControl,
		Ops:  []Op{OpPing, OpVersion, OpList, OpInspect, OpStart, OpStop},
	}
}

// ProfileByName returns a built-in profile.
func ProfileByName(name string) (Profile, error) {
	switch name {
	case ProfileNameSkills:
		return SkillsProfile(), nil
	case ProfileNameMaintenance:
		return MaintenanceProfile(), nil
	case ProfileNameDockerControl:
		return DockerControlProfile(), nil
	}
	return Profile{}, talos.Errorf(talos.CodeConfigInvalid, "sockproxy.ProfileByName",
		"unknown profile %q: use %q, %q or %q", name, ProfileNameSkills, ProfileNameMaintenance, ProfileNameDockerControl)
}

func (p Profile) allows(op Op) bool { return slices.Contains(p.Ops, op) }

func (p Profile) networkModes() []string {
	if len(p.NetworkModes) == 0 {
		return defaultNetworkModes
	}
	return p.NetworkModes
}

func (p Profile) validate() error {
	const op = "sockproxy.New"
	if p.Name == "" {
		return talos.Errorf(talos.CodeConfigInvalid, op, "Profile.Name is empty: name the profile (for example %q)", ProfileNameSkills)
	}
	if len(p.Ops) == 0 {
		return talos.Errorf(talos.CodeConfigInvalid, op, "profile %q has no Ops: list the operations it may call", p.Name)
	}
	for _, o := range p.Ops {
		if !slices.Contains(allOps, o) {
			return talos.Errorf(talos.CodeConfigInvalid, op, "profile %q: unknown op %q: allowed are %v", p.Name, o, allOps)
		}
	}
	for _, b := range p.BindAllowlist {
		if !strings.HasPrefix(b, "/") || path.Clean(b) != b || b == "/" {
			return talos.Errorf(talos.CodeConfigInvalid, op,
				"profile %q: BindAllowlist entry %q must be an absolute, clean path other than /", p.Name, b)
		}
	}
	for _, m := range p.NetworkModes {
		lm := strings.ToLower(m)
		if lm == "host" || strings.HasPrefix(lm, "container:") || m == "" {
			return talos.Errorf(talos.CodeConfigInvalid, op,
				"profile %q: NetworkModes entry %q is not allowed (host, container:… and empty are never allowed)", p.Name, m)
		}
	}
	return nil
}

// Config configures a Proxy. The zero value (with an Audit logger, ideally)
// serves the skills profile in front of /var/run/docker.sock.
type Config struct {
	// Upstream is the Docker engine: "unix:///path/docker.sock" or
	// "tcp://host:port". Empty means DefaultUpstream.
	Upstream string

	// Profile is the policy this proxy applies. A zero Profile means
	// SkillsProfile().
	Profile Profile

	// Label is the label key required on managed containers; empty means
	// LabelManaged. Its value is always LabelManagedValue.
	Label string

	// MaxBodyBytes caps a create or update body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// RateLimit is the sustained requests per second per client; 0 means
	// DefaultRateLimit, a negative value disables rate limiting.
	RateLimit float64

	// RateBurst is the token-bucket depth; 0 means DefaultRateBurst.
	RateBurst int

	// InspectCacheTTL is how long a container's resolution is cached; 0
	// means DefaultInspectCacheTTL, a negative value disables the cache.
	InspectCacheTTL time.Duration

	// MinAPIVersion is the oldest /vX.Y prefix accepted; empty means
	// DefaultMinAPIVersion.
	MinAPIVersion string

	// Audit receives one record per denial and per allowed state-changing
	// call (tier-1 audit log). nil discards.
	Audit *slog.Logger

	// Logger receives operational messages (upstream errors). nil discards.
	Logger *slog.Logger

	// Transport, if set, is used to reach the engine instead of dialling
	// Upstream (tests use it).
	Transport http.RoundTripper
}

// parseUpstream parses Upstream into a dial network and address.
func parseUpstream(s string) (network, addr string, err error) {
	u, perr := url.Parse(s)
	if perr != nil {
		return "", "", talos.Errorf(talos.CodeConfigInvalid, "sockproxy.New", "Upstream %q is not a URL: %v; use unix:///var/run/docker.sock or tcp://127.0.0.1:2375", s, perr)
	}
	switch u.Scheme {
	case "unix":
		if u.Path == "" {
			break
		}
		return "unix", u.Path, nil
	case "tcp", "http":
		if u.Host == "" {
			break
		}
		return "tcp", u.Host, nil
	}
	return "", "", talos.Errorf(talos.CodeConfigInvalid, "sockproxy.New",
		"Upstream %q is not supported: use unix:///path/to/docker.sock or tcp://host:port", s)
}

// parseVersion parses "1.41" into (1, 41).
func parseVersion(s string) (major, minor int, ok bool) {
	a, b, found := strings.Cut(s, ".")
	if !found {
		return 0, 0, false
	}
	if !isDigits(a) || !isDigits(b) || len(a) > 3 || len(b) > 3 {
		return 0, 0, false
	}
	major, _ = strconv.Atoi(a) // at most three digits: cannot fail
	minor, _ = strconv.Atoi(b)
	return major, minor, true
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
