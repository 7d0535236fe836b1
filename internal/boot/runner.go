package boot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/talos-ironclad/talos/internal/redact"
)

// Defaults of the runner. The original specification gives every step a
// target window and the whole boot a 60 s budget; it logs the windows and
// never enforces them. We enforce a per-step timeout (the step's own, or
// DefaultStepTimeout) and log, without failing, a boot that overruns its
// budget.
const (
	// DefaultStepTimeout bounds a step that sets no Timeout. The longest
	// step of the original boot sequence is the PostgreSQL wait: 15 tries at
	// 1 s, so 30 s leaves room for it.
	DefaultStepTimeout = 30 * time.Second
	// DefaultBudget is the whole boot's target duration ("within 60 s" in the
	// original specification). Exceeding it logs a warning.
	DefaultBudget = 60 * time.Second
)

// Outcome is the result of one step.
type Outcome string

// Step outcomes.
const (
	// OK: the step succeeded.
	OK Outcome = "ok"
	// Degraded: the step failed (or warned) but is not fatal; boot went on
	// and the system runs degraded.
	Degraded Outcome = "degraded"
	// Failed: a fatal step failed; boot stopped here.
	Failed Outcome = "failed"
	// Skipped: the step did not run (it said so with ErrSkip, or an earlier
	// fatal failure or a cancelled boot stopped the run before it).
	Skipped Outcome = "skipped"
)

// ErrSkip, returned (possibly wrapped) by a step's Run, marks the step as
// skipped rather than failed; the returned detail says why.
var ErrSkip = errors.New("step skipped")

// warnError marks an error as a warning: the step is Degraded even if it is
// Fatal.
type warnError struct{ err error }

func (w *warnError) Error() string { return w.err.Error() }
func (w *warnError) Unwrap() error { return w.err }

// Warn wraps err so that the step that returns it ends Degraded instead of
// Failed, even when the step is Fatal. Use it for the failure matrix's
// "warn and continue" rows inside a fatal step (for example Redis answers,
// but CONFIG is renamed). Warn(nil) is nil.
func Warn(err error) error {
	if err == nil {
		return nil
	}
	return &warnError{err: err}
}

// IsWarning reports whether err was marked with Warn.
func IsWarning(err error) bool {
	var w *warnError
	return errors.As(err, &w)
}

// Step is one boot step.
type Step struct {
	// Name identifies the step in logs, the report and errors ("redis").
	Name string
	// Timeout bounds the step; zero means the runner's default.
	Timeout time.Duration
	// Fatal: a failure stops the boot. Otherwise a failure marks the
	// system degraded and the next step runs.
	Fatal bool
	// Run does the work. It returns a short human detail (what was found,
	// which backend is used) and an error. Returning an error wrapping
	// ErrSkip marks the step skipped; one made with Warn marks it degraded.
	// Run must return when ctx is done.
	Run func(ctx context.Context) (detail string, err error)
}

// StepResult is what one step did.
type StepResult struct {
	Name     string        `json:"name"`
	Outcome  Outcome       `json:"outcome"`
	Fatal    bool          `json:"fatal"`
	Detail   string        `json:"detail,omitempty"`
	Error    string        `json:"error,omitempty"`
	Started  time.Time     `json:"started_at"`
	Duration time.Duration `json:"duration_ns"`
	// Err is the step's error, for errors.Is; not serialised.
	Err error `json:"-"`
}

// Report is the result of a whole boot.
type Report struct {
	Started  time.Time     `json:"started_at"`
	Duration time.Duration `json:"duration_ns"`
	Steps    []StepResult  `json:"steps"`
	// Degraded is true when at least one step ended Degraded.
	Degraded bool `json:"degraded"`
	// FailedStep names the fatal step that stopped the boot, if any.
	FailedStep string `json:"failed_step,omitempty"`
}

// Step returns the result of the named step.
func (r Report) Step(name string) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Name == name {
			return s, true
		}
	}
	return StepResult{}, false
}

// StepError is returned by Run when a fatal step fails. It unwraps to the
// step's own error, so errors.Is(err, talos.ErrRedis) works when the step
// returned a T001 error.
type StepError struct {
	Step     string
	Duration time.Duration
	Err      error
}

// Error names the failed step and its cause, keeping the cause's T-code text.
func (e *StepError) Error() string {
	return fmt.Sprintf("boot step %q failed after %s: %v (boot stopped; fix the cause and start again)",
		e.Step, e.Duration.Round(time.Millisecond), redact.Text(e.Err.Error()))
}

// Unwrap returns the step's error.
func (e *StepError) Unwrap() error { return e.Err }

// Config configures a Runner. The zero value uses the defaults above.
type Config struct {
	// DefaultStepTimeout applies to steps without their own Timeout.
	DefaultStepTimeout time.Duration
	// Budget is the whole boot's target; an overrun is logged.
	Budget time.Duration
	// OnStep, if set, is called after each step that ran, with its result,
	// before the next step starts (a later step, such as writing the ready
	// marker, can then report the earlier ones).
	OnStep func(StepResult)
}

// AbandonGrace is how long the runner waits, after a step's context ended
// (its timeout, or the boot was cancelled), for the step to return before
// abandoning it.
const AbandonGrace = time.Second

// Runner runs boot steps in order.
type Runner struct {
	cfg Config
	log *slog.Logger
}

// New returns a Runner. log may be nil (discard).
func New(cfg Config, log *slog.Logger) *Runner {
	if cfg.DefaultStepTimeout <= 0 {
		cfg.DefaultStepTimeout = DefaultStepTimeout
	}
	if cfg.Budget <= 0 {
		cfg.Budget = DefaultBudget
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Runner{cfg: cfg, log: log}
}

// Run runs steps strictly in order, each under its timeout, and measures
// each. A fatal failure stops the run: the remaining steps are reported
// Skipped and Run returns a *StepError naming the step. A non-fatal failure
// marks the step (and the report) Degraded and the run goes on. If ctx is
// cancelled, the current step sees it, the rest are skipped and Run returns
// ctx's error. The report is complete in every case.
func (r *Runner) Run(ctx context.Context, steps []Step) (Report, error) {
	rep := Report{Started: time.Now(), Steps: make([]StepResult, 0, len(steps))}
	var stopErr error
	for i, st := range steps {
		if stopErr == nil && ctx.Err() != nil {
			stopErr = ctx.Err()
		}
		if stopErr != nil {
			why := "not run: boot stopped"
			if rep.FailedStep != "" {
				why = fmt.Sprintf("not run: step %q failed", rep.FailedStep)
			}
			rep.Steps = append(rep.Steps, StepResult{Name: st.Name, Outcome: Skipped, Fatal: st.Fatal, Detail: why})
			continue
		}
		res := r.runStep(ctx, i+1, len(steps), st)
		rep.Steps = append(rep.Steps, res)
		if r.cfg.OnStep != nil {
			r.cfg.OnStep(res)
		}
		switch res.Outcome {
		case Degraded:
			rep.Degraded = true
		case Failed:
			if ctx.Err() != nil {
				stopErr = ctx.Err()
				break
			}
			rep.FailedStep = st.Name
			stopErr = &StepError{Step: st.Name, Duration: res.Duration, Err: res.Err}
		}
	}
	rep.Duration = time.Since(rep.Started)
	if stopErr == nil && rep.Duration > r.cfg.Budget {
		r.log.Warn("boot overran its budget", "duration", rep.Duration, "budget", r.cfg.Budget)
	}
	return rep, stopErr
}

func (r *Runner) runStep(ctx context.Context, n, total int, st Step) StepResult {
	timeout := st.Timeout
	if timeout <= 0 {
		timeout = r.cfg.DefaultStepTimeout
	}
	res := StepResult{Name: st.Name, Fatal: st.Fatal, Started: time.Now()}
	r.log.Info("boot step starting", "step", st.Name, "n", n, "of", total, "timeout", timeout)

	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type out struct {
		detail string
		err    error
	}
	done := make(chan out, 1)
	go func() {
		defer func() {
			if p := recover(); p != nil {
				done <- out{err: fmt.Errorf("step panicked: %v", p)}
			}
		}()
		if st.Run == nil {
			done <- out{err: errors.New("step has no Run function")}
			return
		}
		d, err := st.Run(sctx)
		done <- out{d, err}
	}()
	var o out
	select {
	case o = <-done:
		res.Duration = time.Since(res.Started)
	case <-sctx.Done():
		res.Duration = time.Since(res.Started)
		select {
		case o = <-done: // it finished as the context ended: its result stands
		default:
			// Give a step that honours its context AbandonGrace to return, so
			// what it did (fields it set, files it wrote) happens before Run
			// returns and the caller cleans up; it still counts as failed.
			// A step that ignores its context is abandoned: its goroutine
			// ends when Run returns; the buffered channel keeps it from
			// blocking.
			timer := time.NewTimer(AbandonGrace)
			select {
			case late := <-done:
				o = out{detail: late.detail, err: sctx.Err()}
			case <-timer.C:
				o = out{err: sctx.Err()}
			}
			timer.Stop()
		}
	}
	res.Detail = redact.Text(o.detail)
	if o.err != nil && errors.Is(o.err, context.DeadlineExceeded) && ctx.Err() == nil {
		o.err = fmt.Errorf("timed out after %s: %w", timeout, o.err)
	}
	res.Err = o.err
	if o.err != nil {
		res.Error = redact.Text(o.err.Error())
	}
	switch {
	case o.err == nil:
		res.Outcome = OK
		r.log.Info("boot step done", "step", st.Name, "duration", res.Duration, "detail", res.Detail)
	case errors.Is(o.err, ErrSkip):
		res.Outcome = Skipped
		res.Err, res.Error = nil, ""
		r.log.Info("boot step skipped", "step", st.Name, "detail", res.Detail)
	case st.Fatal && !IsWarning(o.err):
		res.Outcome = Failed
		r.log.Error("boot step failed", "step", st.Name, "duration", res.Duration, "err", res.Error)
	default:
		res.Outcome = Degraded
		r.log.Warn("boot step degraded", "step", st.Name, "duration", res.Duration, "err", res.Error, "detail", res.Detail)
	}
	return res
}
