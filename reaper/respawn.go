package reaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
)

// Respawn defaults.
const (
	// DefaultMemoryBytes is the container memory limit (mem_limit 512m).
	DefaultMemoryBytes int64 = 512 << 20
	// DefaultNanoCPUs is one CPU (cpu_quota 100000 over cpu_period 100000).
	DefaultNanoCPUs int64 = 1_000_000_000
	// DefaultPidsLimit is the container's process limit (pids_limit 100).
	DefaultPidsLimit int64 = 100
	// DefaultNetworkMode is no network: deny by default makes network
	// access something to configure.
	DefaultNetworkMode = "none"
	// DefaultNamePrefix prefixes the session ID in container names
	// (spec: talos-browser-{session_id}).
	DefaultNamePrefix = "talos-browser-"
	// DefaultBaseBackoff is the first respawn delay; attempt n (from 0)
	// waits DefaultBaseBackoff·2ⁿ: 5, 10, 20, 40, 80 s.
	DefaultBaseBackoff = 5 * time.Second
	// DefaultMaxRespawns is how many respawns a session gets before
	// "max respawns exceeded" (spec max_respawns 5).
	DefaultMaxRespawns = 5
	// DefaultStopTimeout is the grace stop gives a container before it is
	// killed.
	DefaultStopTimeout = 10 * time.Second
	// DefaultResetAfter is how long a session must go without a respawn for
	// its attempt counter to start again from zero. The spec never resets it,
	// so one crash a day would exhaust a long-lived
	// session within a week; ten minutes is far beyond the 155 s the whole
	// backoff ladder takes.
	DefaultResetAfter = 10 * time.Minute
)

// DefaultTmpfs returns the spec's tmpfs mounts: /tmp (100 MB) and
// /home/browser/data (50 MB), both noexec and nosuid.
func DefaultTmpfs() map[string]string {
	return map[string]string{
		"/tmp":               "rw,noexec,nosuid,size=100m",
		"/home/browser/data": "rw,noexec,nosuid,size=50m",
	}
}

// DefaultSecurityOpt is the spec's no-new-privileges (the only SecurityOpt
// the socket proxy lets through).
func DefaultSecurityOpt() []string { return []string{"no-new-privileges:true"} }

// ErrMaxRespawns is wrapped by Respawn's error once a session used all its
// respawns.
var ErrMaxRespawns = errors.New("max respawns exceeded")

// RespawnConfig configures a Manager. A zero field means the default.
type RespawnConfig struct {
	// Image is the container image (required; the spec's is
	// talos/browser-automation:v4.0).
	Image string
	// Cmd and Env are passed to the container; User runs it as that user.
	Cmd  []string
	Env  []string
	User string
	// Labels are extra labels; the Talos labels are always set.
	Labels map[string]string

	MemoryBytes int64 // 0 means DefaultMemoryBytes; swap is always disabled (MemorySwap = MemoryBytes)
	NanoCPUs    int64 // 0 means DefaultNanoCPUs
	PidsLimit   int64 // 0 means DefaultPidsLimit
	// Tmpfs replaces DefaultTmpfs() when non-nil.
	Tmpfs map[string]string
	// NetworkMode is empty for DefaultNetworkMode; "host" and "container:…"
	// are refused.
	NetworkMode string
	// CapAdd lists capabilities added back after dropping ALL (the spec adds
	// CHOWN, SETGID, SETUID; the socket proxy must allow them). Empty adds
	// none.
	CapAdd []string

	NamePrefix  string        // "" means DefaultNamePrefix
	BaseBackoff time.Duration // 0 means DefaultBaseBackoff
	MaxRespawns int           // 0 means DefaultMaxRespawns
	StopTimeout time.Duration // 0 means DefaultStopTimeout
	// ResetAfter is the respawn-free time after which the attempt counter
	// restarts; 0 means DefaultResetAfter, negative never resets.
	ResetAfter time.Duration

	// Logger receives one record per spawn, kill and respawn (nil discards).
	Logger *slog.Logger
}

// RespawnResult describes one successful respawn.
type RespawnResult struct {
	ContainerID string
	Attempt     int           // 1 for the first respawn of the session
	Backoff     time.Duration // the delay waited before spawning
}

// Manager spawns, kills and respawns one container per session through an
// Engine, with the spec's resource limits and an exponential backoff.
type Manager struct {
	cfg RespawnConfig
	eng Engine
	log *slog.Logger

	mu       sync.Mutex
	sessions map[string]*session
}

type session struct {
	mu          sync.Mutex // serialises operations on one session; not held during a backoff
	containerID string
	attempts    int
	lastRespawn time.Time
	// cancelBackoff, while a Respawn waits out its backoff, ends that wait;
	// Kill calls it so the pending respawn does not bring the container
	// back.
	cancelBackoff context.CancelCauseFunc
}

// ErrKilledDuringBackoff is returned by a Respawn whose session was killed
// (Manager.Kill) while it waited out its backoff: nothing is spawned.
var ErrKilledDuringBackoff = errors.New("the session was killed during the respawn backoff")

var sessionIDRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// NewManager validates cfg and returns a Manager using eng.
func NewManager(cfg RespawnConfig, eng Engine) (*Manager, error) {
	const op = "reaper.NewManager"
	bad := func(field string, v any, allowed string) error {
		return talos.Errorf(talos.CodeConfigInvalid, op, "RespawnConfig.%s is %v: %s", field, v, allowed)
	}
	switch {
	case eng == nil:
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "no Engine: pass reaper/docker.New(...) or a fake")
	case cfg.Image == "":
		return nil, bad("Image", `""`, "name the container image")
	case cfg.MemoryBytes < 0 || (cfg.MemoryBytes > 0 && cfg.MemoryBytes < 6<<20):
		return nil, bad("MemoryBytes", cfg.MemoryBytes, "use at least 6 MiB (Docker's minimum), 0 for 512 MiB")
	case cfg.NanoCPUs < 0:
		return nil, bad("NanoCPUs", cfg.NanoCPUs, "use a positive number (1e9 = one CPU), 0 for the default")
	case cfg.PidsLimit < 0:
		return nil, bad("PidsLimit", cfg.PidsLimit, "use a positive number, 0 for 100")
	case cfg.BaseBackoff < 0, cfg.StopTimeout < 0:
		return nil, bad("BaseBackoff/StopTimeout", fmt.Sprint(cfg.BaseBackoff, "/", cfg.StopTimeout), "use positive durations, 0 for the defaults")
	case cfg.MaxRespawns < 0:
		return nil, bad("MaxRespawns", cfg.MaxRespawns, "use a positive number, 0 for 5")
	case cfg.NetworkMode == "host" || len(cfg.NetworkMode) >= 10 && cfg.NetworkMode[:10] == "container:":
		return nil, bad("NetworkMode", cfg.NetworkMode, `"host" and "container:…" are never allowed; use "none" or a network name`)
	}
	if cfg.MemoryBytes == 0 {
		cfg.MemoryBytes = DefaultMemoryBytes
	}
	if cfg.NanoCPUs == 0 {
		cfg.NanoCPUs = DefaultNanoCPUs
	}
	if cfg.PidsLimit == 0 {
		cfg.PidsLimit = DefaultPidsLimit
	}
	if cfg.Tmpfs == nil {
		cfg.Tmpfs = DefaultTmpfs()
	}
	if cfg.NetworkMode == "" {
		cfg.NetworkMode = DefaultNetworkMode
	}
	if cfg.NamePrefix == "" {
		cfg.NamePrefix = DefaultNamePrefix
	}
	if cfg.BaseBackoff == 0 {
		cfg.BaseBackoff = DefaultBaseBackoff
	}
	if cfg.MaxRespawns == 0 {
		cfg.MaxRespawns = DefaultMaxRespawns
	}
	if cfg.StopTimeout == 0 {
		cfg.StopTimeout = DefaultStopTimeout
	}
	if cfg.ResetAfter == 0 {
		cfg.ResetAfter = DefaultResetAfter
	}
	return &Manager{cfg: cfg, eng: eng, log: loggerOrDiscard(cfg.Logger), sessions: make(map[string]*session)}, nil
}

// Backoff returns the delay before respawn attempt n (0-based):
// BaseBackoff·2ⁿ.
func (m *Manager) Backoff(n int) time.Duration { return m.cfg.BaseBackoff << n }

// ContainerName returns the container name of a session.
func (m *Manager) ContainerName(sessionID string) string { return m.cfg.NamePrefix + sessionID }

// Spec returns the container spec Spawn would create for sessionID.
func (m *Manager) Spec(sessionID string) ContainerSpec {
	labels := maps.Clone(m.cfg.Labels)
	if labels == nil {
		labels = map[string]string{}
	}
	labels[LabelManaged] = LabelManagedValue
	labels[LabelSession] = sessionID
	labels[LabelCreatedAt] = time.Now().UTC().Format(time.RFC3339)
	return ContainerSpec{
		Name:           m.ContainerName(sessionID),
		Image:          m.cfg.Image,
		Cmd:            slices.Clone(m.cfg.Cmd),
		Env:            append(slices.Clone(m.cfg.Env), "TALOS_SESSION_ID="+sessionID),
		User:           m.cfg.User,
		Labels:         labels,
		MemoryBytes:    m.cfg.MemoryBytes,
		MemorySwap:     m.cfg.MemoryBytes,
		NanoCPUs:       m.cfg.NanoCPUs,
		PidsLimit:      m.cfg.PidsLimit,
		CapDrop:        []string{"ALL"},
		CapAdd:         slices.Clone(m.cfg.CapAdd),
		ReadonlyRootfs: true,
		Tmpfs:          maps.Clone(m.cfg.Tmpfs),
		NetworkMode:    m.cfg.NetworkMode,
		SecurityOpt:    DefaultSecurityOpt(),
	}
}

func (m *Manager) session(op, id string) (*session, error) {
	if !sessionIDRe.MatchString(id) {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op, "session ID %q is not allowed: use 1-64 letters, digits, '_', '.', '-', starting with a letter or digit", truncate(id, 80))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.sessions[id]
	if !ok {
		s = &session{}
		m.sessions[id] = s
	}
	return s, nil
}

// Spawn creates and starts the session's container and returns its ID. A
// container of the same name (an earlier spawn, perhaps by a previous
// daemon) is killed and removed first.
func (m *Manager) Spawn(ctx context.Context, sessionID string) (string, error) {
	s, err := m.session("reaper.Manager.Spawn", sessionID)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return m.spawnLocked(ctx, s, sessionID)
}

func (m *Manager) spawnLocked(ctx context.Context, s *session, sessionID string) (string, error) {
	const op = "reaper.Manager.Spawn"
	if err := m.killLocked(ctx, s, sessionID); err != nil {
		return "", err
	}
	spec := m.Spec(sessionID)
	id, err := m.eng.Create(ctx, spec)
	if err != nil {
		return "", talos.E(talos.CodeDocker, op, "creating container "+spec.Name+" failed: check the engine (or socket proxy) and the image "+spec.Image, err)
	}
	if err := m.eng.Start(ctx, id); err != nil {
		// Do not leave a created, never-started container behind.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.StopTimeout)
		_ = m.eng.Remove(cctx, id)
		cancel()
		return "", talos.E(talos.CodeDocker, op, "starting container "+spec.Name+" failed; it was removed", err)
	}
	s.containerID = id
	m.log.InfoContext(ctx, "reaper: container spawned", "session", sessionID, "container", shortID(id), "name", spec.Name)
	return id, nil
}

// Kill stops (grace StopTimeout) and removes the session's container.
// A container that is already gone is not an error.
func (m *Manager) Kill(ctx context.Context, sessionID string) error {
	s, err := m.session("reaper.Manager.Kill", sessionID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelBackoff != nil {
		s.cancelBackoff(ErrKilledDuringBackoff)
		s.cancelBackoff = nil
	}
	return m.killLocked(ctx, s, sessionID)
}

func (m *Manager) killLocked(ctx context.Context, s *session, sessionID string) error {
	const op = "reaper.Manager.Kill"
	ids := []string{}
	if s.containerID != "" {
		ids = append(ids, s.containerID)
	}
	// Also any container with the session's name (left by a crash).
	list, err := m.eng.List(ctx, LabelManaged, LabelManagedValue)
	if err != nil {
		return talos.E(talos.CodeDocker, op, "listing Talos containers failed: check the engine (or socket proxy)", err)
	}
	name := m.ContainerName(sessionID)
	for _, c := range list {
		if c.Name == name && !slices.Contains(ids, c.ID) {
			ids = append(ids, c.ID)
		}
	}
	for _, id := range ids {
		if err := stopAndRemove(ctx, m.eng, id, m.cfg.StopTimeout); err != nil {
			return talos.E(talos.CodeDocker, op, "removing container "+shortID(id)+" of session "+sessionID+" failed", err)
		}
		m.log.InfoContext(ctx, "reaper: container removed", "session", sessionID, "container", shortID(id))
	}
	s.containerID = ""
	return nil
}

// stopAndRemove stops then force-removes id; "not found" counts as done.
func stopAndRemove(ctx context.Context, eng Engine, id string, grace time.Duration) error {
	// A failed stop (already stopped, or the engine timed out) is not
	// fatal: Remove forces a kill.
	_ = eng.Stop(ctx, id, grace)
	if err := eng.Remove(ctx, id); err != nil && !errors.Is(err, ErrContainerNotFound) {
		return err
	}
	return nil
}

// Respawn replaces the session's container after a failure: it kills the
// old one, waits Backoff(attempts) (5, 10, 20, 40, 80 s), and spawns a new
// one. After MaxRespawns respawns it returns an error wrapping
// ErrMaxRespawns (code T104) and spawns nothing. The counter restarts when
// the last respawn is more than ResetAfter ago. ctx cancels the wait.
func (m *Manager) Respawn(ctx context.Context, sessionID string) (RespawnResult, error) {
	const op = "reaper.Manager.Respawn"
	s, err := m.session(op, sessionID)
	if err != nil {
		return RespawnResult{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancelBackoff != nil {
		return RespawnResult{}, talos.Errorf(talos.CodeConfigInvalid, op, "a respawn of session %s is already waiting out its backoff: wait for it (or Kill the session)", sessionID)
	}
	if m.cfg.ResetAfter > 0 && s.attempts > 0 && time.Since(s.lastRespawn) > m.cfg.ResetAfter {
		s.attempts = 0
	}
	if s.attempts >= m.cfg.MaxRespawns {
		return RespawnResult{}, talos.E(talos.CodeSandboxQuota, op,
			fmt.Sprintf("max respawns exceeded for session %s (%d respawns): find out why its container keeps failing, then Kill and Spawn it", sessionID, s.attempts), ErrMaxRespawns)
	}
	if err := m.killLocked(ctx, s, sessionID); err != nil {
		return RespawnResult{}, err
	}
	backoff := m.Backoff(s.attempts)
	s.attempts++
	s.lastRespawn = time.Now()
	m.log.InfoContext(ctx, "reaper: respawning container", "session", sessionID, "attempt", s.attempts, "backoff", backoff.String())

	// Wait without holding the session: Kill, Attempts and ActiveContainers
	// (the hunt) must not block for up to 80 s. Kill ends the wait.
	wctx, cancel := context.WithCancelCause(ctx)
	s.cancelBackoff = cancel
	s.mu.Unlock()
	t := time.NewTimer(backoff)
	select {
	case <-wctx.Done():
	case <-t.C:
	}
	t.Stop()
	s.mu.Lock()
	s.cancelBackoff = nil
	cause := context.Cause(wctx) // nil when the backoff ran out
	cancel(nil)
	if errors.Is(cause, ErrKilledDuringBackoff) {
		return RespawnResult{}, fmt.Errorf("%s: session %s: %w; nothing was spawned", op, sessionID, ErrKilledDuringBackoff)
	}
	if cause != nil {
		return RespawnResult{}, ctx.Err()
	}
	id, err := m.spawnLocked(ctx, s, sessionID)
	if err != nil {
		return RespawnResult{}, err
	}
	s.lastRespawn = time.Now()
	return RespawnResult{ContainerID: id, Attempt: s.attempts, Backoff: backoff}, nil
}

// Attempts returns how many respawns the session used so far.
func (m *Manager) Attempts(sessionID string) int {
	m.mu.Lock()
	s, ok := m.sessions[sessionID]
	m.mu.Unlock()
	if !ok {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.attempts
}

// ActiveContainers returns the IDs of the sessions' current containers, for
// HuntConfig.ActiveContainers (the hunt then leaves them alone however old
// they are).
func (m *Manager) ActiveContainers() []string {
	m.mu.Lock()
	sessions := make([]*session, 0, len(m.sessions))
	for _, s := range m.sessions {
		sessions = append(sessions, s)
	}
	m.mu.Unlock()
	var out []string
	for _, s := range sessions {
		s.mu.Lock()
		if s.containerID != "" {
			out = append(out, s.containerID)
		}
		s.mu.Unlock()
	}
	slices.Sort(out)
	return out
}

// Forget drops the session's bookkeeping (after a final Kill).
func (m *Manager) Forget(sessionID string) {
	m.mu.Lock()
	delete(m.sessions, sessionID)
	m.mu.Unlock()
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
