package dream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// Defaults of the schedule, the cycle and its recovery.
const (
	// DefaultSchedule runs the cycle at 04:00 on the configured wall clock.
	DefaultSchedule = "0 4 * * *"
	// DefaultCycleTimeout is the hard limit of one cycle (spec
	// MAX_CYCLE_DURATION, 1,800 s): a phase still running then is cut
	// off and later phases do not start.
	DefaultCycleTimeout = 1800 * time.Second
	// DefaultOnDemandInterval is the shortest time between two automatic
	// on-demand runs (Request, the disk monitor's): at most one an hour.
	DefaultOnDemandInterval = time.Hour
	// DefaultReportsKept is how many cycle reports are kept.
	DefaultReportsKept = 30
	// DefaultIdleNights is how many scheduled cycles in a row a phase may
	// do nothing useful before an alert.
	DefaultIdleNights = 7
	// DefaultStartGrace is how late a scheduled window may still start (for
	// example after the daemon was down at 04:00, or another process held
	// the lock); later, the window counts as missed.
	DefaultStartGrace = time.Hour
	// DefaultMaxPhaseStarts is how often one cycle starts a phase before it
	// gives up on it: a second start means the process died during the
	// first, so a phase that kills the daemon cannot do so forever.
	DefaultMaxPhaseStarts = 2
	// lockPoll is how often Run retries a due window whose lock is busy.
	lockPoll = time.Minute
	// lockWait is how long RunNow, Request and Resume wait for a lock
	// another holder may be about to let go (Run's look for due work takes
	// it for a moment), polling every lockRetry.
	lockWait  = 2 * time.Second
	lockRetry = 20 * time.Millisecond
)

// The well-known phase names and their timeouts, in the order they run.
const (
	PhaseRedisFlush   = "redis_flush"
	PhaseVectorPrune  = "vector_prune"
	PhaseLogCompress  = "log_compress"
	PhaseZombieHunt   = "zombie_hunt"
	PhaseHealthReport = "health_report"

	TimeoutRedisFlush   = 30 * time.Second
	TimeoutVectorPrune  = 900 * time.Second
	TimeoutLogCompress  = 300 * time.Second
	TimeoutZombieHunt   = 300 * time.Second
	TimeoutHealthReport = 60 * time.Second
)

// DefaultRetryBackoff returns the waits before the three recovery retries
// of failed phases: 300, 900 and 3,600 s.
func DefaultRetryBackoff() []time.Duration {
	return []time.Duration{300 * time.Second, 900 * time.Second, 3600 * time.Second}
}

// DefaultTimeout returns the spec's timeout of a well-known phase name.
func DefaultTimeout(phase string) (time.Duration, bool) {
	switch phase {
	case PhaseRedisFlush:
		return TimeoutRedisFlush, true
	case PhaseVectorPrune:
		return TimeoutVectorPrune, true
	case PhaseLogCompress:
		return TimeoutLogCompress, true
	case PhaseZombieHunt:
		return TimeoutZombieHunt, true
	case PhaseHealthReport:
		return TimeoutHealthReport, true
	}
	return 0, false
}

// Config configures a Scheduler. A zero field takes the default named
// beside it.
type Config struct {
	// StateDir holds the lock, the ledger, the checkpoint, the reports and
	// the escalation files (created 0700). Required; in the daemon it is
	// under TALOS_HOME/data.
	StateDir string
	// Schedule is a five-field cron expression (DefaultSchedule).
	Schedule string
	// Location is the time zone of Schedule's wall clock (time.Local).
	Location *time.Location
	// CycleTimeout is the hard limit of one cycle (DefaultCycleTimeout).
	CycleTimeout time.Duration
	// RetryBackoff lists the waits before each recovery retry of the
	// failed phases; its length is the number of retries
	// (DefaultRetryBackoff).
	RetryBackoff []time.Duration
	// OnDemandInterval is the shortest time between automatic on-demand
	// runs (DefaultOnDemandInterval).
	OnDemandInterval time.Duration
	// ReportsKept is how many cycle reports are kept (DefaultReportsKept).
	ReportsKept int
	// IdleNights is how many idle scheduled cycles in a row raise an alert
	// (DefaultIdleNights).
	IdleNights int
	// StartGrace is how late a scheduled window may still start
	// (DefaultStartGrace).
	StartGrace time.Duration
	// Logger receives progress lines; nil discards them.
	Logger *slog.Logger
}

// Kind says why a cycle ran.
type Kind string

// Kinds of cycle.
const (
	KindScheduled Kind = "scheduled" // a window of the schedule
	KindOperator  Kind = "operator"  // RunNow (talos dream run --now)
	KindAutomatic Kind = "automatic" // Request, for example the disk monitor
	KindRetry     Kind = "retry"     // a recovery retry of failed phases
)

// PhaseResult is what a phase reports about its work.
type PhaseResult struct {
	// Counters say what the phase did, for example "keys_deleted": 1203.
	Counters map[string]int64
	// Skipped says why the phase had nothing to do, for example "12,000
	// memories, under the 90,000 trigger". A phase whose counters are all
	// zero and that gives no reason did nothing useful.
	Skipped string
}

// Phase is one step of the cycle, registered by the package that owns the
// work.
type Phase struct {
	// Name identifies the phase in checkpoints, reports and alerts:
	// lower-case letters, digits and underscores, at most 64.
	Name string
	// Timeout bounds one run of the phase. Zero means the spec's timeout
	// for the well-known names (DefaultTimeout) and is an error for
	// others.
	Timeout time.Duration
	// Run does the work. It must return soon after ctx is done; a phase
	// that does not is abandoned (reported as timed out) and the cycle
	// goes on. A panic is recovered and reported as a failure.
	Run func(ctx context.Context) (PhaseResult, error)
}

// Alert is a condition that needs a person.
type Alert struct {
	Severity talos.Severity
	Kind     AlertKind
	// Phase is the phase concerned, if any.
	Phase string
	// Message says what happened and what to do.
	Message string
	// File is the escalation file, for KindEscalation.
	File string
	Time time.Time
}

// AlertKind classifies alerts.
type AlertKind string

// Alert kinds.
const (
	// AlertEscalation: phases still failed after the last recovery retry
	// (or no retry fitted before the next window). Critical.
	AlertEscalation AlertKind = "escalation"
	// AlertMissedWindow: a scheduled window passed without a cycle.
	AlertMissedWindow AlertKind = "missed_window"
	// AlertIdlePhase: a phase did nothing useful for IdleNights scheduled
	// cycles in a row.
	AlertIdlePhase AlertKind = "idle_phase"
)

// Alerter delivers alerts (in the daemon: the audit log, the dashboard and
// the operator's channels).
type Alerter interface {
	Alert(ctx context.Context, a Alert) error
}

// AlerterFunc adapts a function to Alerter.
type AlerterFunc func(ctx context.Context, a Alert) error

// Alert calls f.
func (f AlerterFunc) Alert(ctx context.Context, a Alert) error { return f(ctx, a) }

// Scheduler runs the dream cycle: on its schedule (Run), on demand (RunNow,
// Request), resuming a killed cycle and retrying failed phases. One cycle
// runs at a time across every process sharing the state directory.
type Scheduler struct {
	cfg   Config
	sched *Schedule
	alert Alerter
	log   *slog.Logger
	wake  chan struct{}

	mu     sync.Mutex
	phases []Phase
}

var phaseName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// New validates cfg and creates the state directory. alerter may be nil
// (alerts are then only logged). Every problem of cfg is reported at once.
func New(cfg Config, alerter Alerter) (*Scheduler, error) {
	const op = "dream.New"
	var errs []error
	if cfg.StateDir == "" {
		errs = append(errs, errors.New("StateDir is empty: give the directory for the lock, checkpoints and reports"))
	}
	if cfg.Schedule == "" {
		cfg.Schedule = DefaultSchedule
	}
	if cfg.Location == nil {
		cfg.Location = time.Local
	}
	sched, err := ParseSchedule(cfg.Schedule, cfg.Location)
	if err != nil {
		errs = append(errs, fmt.Errorf("Schedule: %w", err))
	}
	if cfg.CycleTimeout == 0 {
		cfg.CycleTimeout = DefaultCycleTimeout
	}
	if cfg.CycleTimeout < 0 {
		errs = append(errs, fmt.Errorf("CycleTimeout %s is negative: want a positive duration (default %s)", cfg.CycleTimeout, DefaultCycleTimeout))
	}
	if cfg.RetryBackoff == nil {
		cfg.RetryBackoff = DefaultRetryBackoff()
	}
	cfg.RetryBackoff = slices.Clone(cfg.RetryBackoff)
	for i, d := range cfg.RetryBackoff {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("RetryBackoff[%d] = %s: want a positive duration", i, d))
		}
	}
	if cfg.OnDemandInterval == 0 {
		cfg.OnDemandInterval = DefaultOnDemandInterval
	}
	if cfg.OnDemandInterval < 0 {
		errs = append(errs, fmt.Errorf("OnDemandInterval %s is negative: want a positive duration", cfg.OnDemandInterval))
	}
	if cfg.ReportsKept == 0 {
		cfg.ReportsKept = DefaultReportsKept
	}
	if cfg.ReportsKept < 0 {
		errs = append(errs, fmt.Errorf("ReportsKept %d is negative: want at least 1", cfg.ReportsKept))
	}
	if cfg.IdleNights == 0 {
		cfg.IdleNights = DefaultIdleNights
	}
	if cfg.IdleNights < 0 {
		errs = append(errs, fmt.Errorf("IdleNights %d is negative: want at least 1", cfg.IdleNights))
	}
	if cfg.StartGrace == 0 {
		cfg.StartGrace = DefaultStartGrace
	}
	if cfg.StartGrace < 0 {
		errs = append(errs, fmt.Errorf("StartGrace %s is negative: want a positive duration", cfg.StartGrace))
	}
	if len(errs) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, op, "the dream configuration is invalid", errors.Join(errs...))
	}
	for _, d := range []string{cfg.StateDir, cfg.StateDir + "/" + reportsDir, cfg.StateDir + "/" + escalationsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, talos.Errorf(talos.CodeDirPermissions, op, "create the dream state directory %s: %w", d, err)
		}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{cfg: cfg, sched: sched, alert: alerter, log: log, wake: make(chan struct{}, 1)}, nil
}

// Register adds a phase. Phases run in the order they were registered (the
// daemon registers the spec's order: redis_flush, vector_prune,
// log_compress, zombie_hunt, health_report, then its own). A phase
// registered while a cycle runs joins from the next cycle. Every problem is
// reported at once.
func (s *Scheduler) Register(p Phase) error {
	const op = "dream.Register"
	var errs []error
	if !phaseName.MatchString(p.Name) {
		errs = append(errs, fmt.Errorf("phase name %s: want 1 to 64 lower-case letters, digits or underscores", clip(p.Name)))
	}
	if p.Timeout == 0 {
		d, ok := DefaultTimeout(p.Name)
		if !ok {
			errs = append(errs, fmt.Errorf("phase %s has no Timeout and no spec default: set Timeout", clip(p.Name)))
		}
		p.Timeout = d
	}
	if p.Timeout < 0 {
		errs = append(errs, fmt.Errorf("phase %s: Timeout %s is negative: want a positive duration", clip(p.Name), p.Timeout))
	}
	if p.Run == nil {
		errs = append(errs, fmt.Errorf("phase %s: Run is nil", clip(p.Name)))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if slices.ContainsFunc(s.phases, func(q Phase) bool { return q.Name == p.Name }) {
		errs = append(errs, fmt.Errorf("phase %s is already registered: names must be unique", clip(p.Name)))
	}
	if len(errs) > 0 {
		return talos.E(talos.CodeConfigInvalid, op, "phase not registered", errors.Join(errs...))
	}
	s.phases = append(s.phases, p)
	return nil
}

// Phases returns the names of the registered phases, in running order.
func (s *Scheduler) Phases() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.phases))
	for i, p := range s.phases {
		out[i] = p.Name
	}
	return out
}

// Schedule returns the parsed schedule.
func (s *Scheduler) Schedule() *Schedule { return s.sched }

// NextWindow returns the first scheduled window after t.
func (s *Scheduler) NextWindow(t time.Time) time.Time { return s.sched.Next(t) }

func (s *Scheduler) phaseList() []Phase {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.phases)
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) raise(ctx context.Context, a Alert) {
	if a.Time.IsZero() {
		a.Time = time.Now()
	}
	s.log.Log(ctx, slogLevel(a.Severity), "dream alert", "kind", string(a.Kind), "phase", a.Phase, "message", a.Message, "file", a.File)
	if s.alert == nil {
		return
	}
	if err := s.alert.Alert(context.WithoutCancel(ctx), a); err != nil {
		s.log.Error("dream alert not delivered", "kind", string(a.Kind), "err", err)
	}
}

func slogLevel(sev talos.Severity) slog.Level {
	switch {
	case sev >= talos.SeverityError:
		return slog.LevelError
	case sev == talos.SeverityWarning:
		return slog.LevelWarn
	}
	return slog.LevelInfo
}
