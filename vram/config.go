package vram

import (
	"log/slog"
	"sort"
	"time"

	"github.com/talos-ironclad/talos"
)

// Byte sizes used by the defaults.
const (
	MiB uint64 = 1 << 20
	GiB uint64 = 1 << 30
)

// Defaults. A zero field of Config means the default named here.
const (
	// DefaultAcquireTimeout bounds how long Acquire waits in the queue before
	// it returns T100 (SEMAPHORE_ACQUIRE).
	DefaultAcquireTimeout = 30 * time.Second
	// DefaultLoadTimeout bounds one model load (MODEL_LOAD).
	DefaultLoadTimeout = 30 * time.Second
	// DefaultUnloadHang is how long an unload may take before the kill ladder
	// starts (UNLOAD_HANG_THRESHOLD). It is the only unload timer.
	DefaultUnloadHang = 29 * time.Second
	// DefaultKillGrace is the wait between SIGTERM and SIGKILL
	// (PROCESS_KILL_TIMEOUT).
	DefaultKillGrace = 10 * time.Second
	// DefaultKillVerify is how long the ladder waits after SIGKILL for the
	// process to disappear (5 re-checks × 0.5 s).
	DefaultKillVerify = 2500 * time.Millisecond
	// DefaultCooldown is the pause after a kill before the next load
	// (RECOVERY_COOLDOWN).
	DefaultCooldown = 60 * time.Second
	// DefaultPollInterval is the watchdog's polling period.
	DefaultPollInterval = 100 * time.Millisecond
	// DefaultUnloadDropRatio is the share of a model's size by which used VRAM
	// must drop for an unload to count as complete (a relative drop, since
	// a desktop display keeps some VRAM in use).
	DefaultUnloadDropRatio = 0.8
	// DefaultCallTimeout bounds a single Resident or GPU reading call made
	// while polling.
	DefaultCallTimeout = 5 * time.Second
)

// Default model names and requirements: coder needs more than 7 GB free,
// vision more than 9 GB.
const (
	DefaultCoderModel   = "coder"
	DefaultVisionModel  = "vision"
	DefaultCoderMinFree = 7 * GiB
	DefaultVisionFree   = 9 * GiB
)

// Model describes what one model needs from the GPU.
type Model struct {
	// MinFree is the free VRAM that must be available before the model is
	// loaded (the load is refused when free VRAM is not above it).
	MinFree uint64
	// Size is the VRAM the model occupies once loaded; an unload is complete
	// when used VRAM dropped by UnloadDropRatio × Size. Zero means what the
	// model was measured to take after its load (used VRAM after minus
	// before), or MinFree when that is unknown.
	Size uint64
}

func (m Model) size() uint64 {
	if m.Size == 0 {
		return m.MinFree
	}
	return m.Size
}

// DefaultModels returns the spec's two models: "coder" (7 GB) and "vision"
// (9 GB). Real deployments map their runtime's model names in Config.Models.
func DefaultModels() map[string]Model {
	return map[string]Model{
		DefaultCoderModel:  {MinFree: DefaultCoderMinFree},
		DefaultVisionModel: {MinFree: DefaultVisionFree},
	}
}

// Config configures a Mutex. The zero value is the spec's configuration.
type Config struct {
	// Models are the models the mutex may load, keyed by the runtime's model
	// name. Acquire refuses any other name. Nil means DefaultModels().
	Models map[string]Model
	// AcquireTimeout bounds the time a request waits in the queue (T100).
	AcquireTimeout time.Duration
	// LoadTimeout bounds one Runtime.Load plus its verification.
	LoadTimeout time.Duration
	// UnloadHang is how long an unload may take before the kill ladder runs.
	UnloadHang time.Duration
	// KillGrace is the wait between SIGTERM and SIGKILL.
	KillGrace time.Duration
	// KillVerify is the wait after SIGKILL for the process to be gone.
	KillVerify time.Duration
	// Cooldown is the pause after a kill before the next load.
	Cooldown time.Duration
	// PollInterval is the period of every polling loop.
	PollInterval time.Duration
	// UnloadDropRatio is the share of the model size used VRAM must drop by
	// for an unload to be complete; it must be in (0, 1].
	UnloadDropRatio float64
	// CallTimeout bounds each Resident or GPU call made while polling.
	CallTimeout time.Duration
	// Logger receives operational logs (swaps, kills, cooldowns); nil
	// discards them.
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	const op = "vram.New"
	if c.Models == nil {
		c.Models = DefaultModels()
	}
	if len(c.Models) == 0 {
		return c, talos.Errorf(talos.CodeConfigInvalid, op, "Config.Models is empty: configure at least one model")
	}
	models := make(map[string]Model, len(c.Models))
	for name, m := range c.Models {
		if name == "" {
			return c, talos.Errorf(talos.CodeConfigInvalid, op, "Config.Models has an empty model name: name each model as the runtime does")
		}
		if m.MinFree == 0 && m.Size == 0 {
			return c, talos.Errorf(talos.CodeConfigInvalid, op, "Config.Models[%q] has MinFree 0 and Size 0: set the VRAM the model needs", name)
		}
		models[name] = m
	}
	c.Models = models
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"AcquireTimeout", &c.AcquireTimeout, DefaultAcquireTimeout},
		{"LoadTimeout", &c.LoadTimeout, DefaultLoadTimeout},
		{"UnloadHang", &c.UnloadHang, DefaultUnloadHang},
		{"KillGrace", &c.KillGrace, DefaultKillGrace},
		{"KillVerify", &c.KillVerify, DefaultKillVerify},
		{"Cooldown", &c.Cooldown, DefaultCooldown},
		{"PollInterval", &c.PollInterval, DefaultPollInterval},
		{"CallTimeout", &c.CallTimeout, DefaultCallTimeout},
	}
	for _, d := range durations {
		if *d.v < 0 {
			return c, talos.Errorf(talos.CodeConfigInvalid, op, "Config.%s is %v: must be positive, or 0 for the default %v", d.name, *d.v, d.def)
		}
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.UnloadDropRatio == 0 {
		c.UnloadDropRatio = DefaultUnloadDropRatio
	}
	if c.UnloadDropRatio < 0 || c.UnloadDropRatio > 1 {
		return c, talos.Errorf(talos.CodeConfigInvalid, op, "Config.UnloadDropRatio is %v: must be in (0, 1], or 0 for the default %v", c.UnloadDropRatio, DefaultUnloadDropRatio)
	}
	return c, nil
}

func (c Config) modelNames() []string {
	names := make([]string, 0, len(c.Models))
	for n := range c.Models {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
