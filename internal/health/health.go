package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/tlog"
)

// Defaults (the original specification checks each dependency once per
// request with the tools' defaults; we bound and cache them so /health stays
// cheap).
const (
	// DefaultCheckTimeout bounds a check that sets no Timeout.
	DefaultCheckTimeout = 2 * time.Second
	// DefaultCacheTTL is how long a result is reused: /health and /metrics
	// hit within this window share one evaluation.
	DefaultCacheTTL = time.Second
	// DefaultRefreshInterval is how often Run re-evaluates in the
	// background, so status changes are seen (and logged) without a request.
	DefaultRefreshInterval = 5 * time.Second
)

// Status is the overall health.
type Status string

// Overall statuses: healthy, degraded or unhealthy.
const (
	Healthy   Status = "healthy"
	Degraded  Status = "degraded"
	Unhealthy Status = "unhealthy"
)

// CheckStatus is one check's result.
type CheckStatus string

// Check statuses (pass/warn/fail in the original specification, spelled as
// the daemon reports them).
const (
	StatusOK   CheckStatus = "ok"
	StatusWarn CheckStatus = "warn"
	StatusFail CheckStatus = "fail"
)

// warning marks a check error as a warning.
type warning struct{ msg string }

func (w *warning) Error() string { return w.msg }

// Warnf returns an error that makes a check report "warn" (degraded) rather
// than "fail", even for a critical check: for example a disk that is 92 %
// full still works.
func Warnf(format string, args ...any) error { return &warning{msg: fmt.Sprintf(format, args...)} }

// Check is one dependency or resource to watch.
type Check struct {
	// Name is the key in the /health JSON and the metrics label ("redis").
	Name string
	// Critical: a failure makes the whole status unhealthy (503). A
	// non-critical failure makes it degraded (still 200).
	Critical bool
	// Timeout bounds one run; zero means DefaultCheckTimeout. A check that
	// runs out of time fails.
	Timeout time.Duration
	// Func does the check. It returns a short detail ("PONG in 0.3 ms",
	// "embedded in-memory") and nil, an error from Warnf, or any other error
	// (a failure; its text becomes the detail). It must return when ctx
	// is done.
	Func func(ctx context.Context) (detail string, err error)
}

// Result is the last result of one check.
type Result struct {
	Status    CheckStatus `json:"status"`
	LatencyMS float64     `json:"latency_ms"`
	Detail    string      `json:"detail"`
	Critical  bool        `json:"critical"`
	CheckedAt time.Time   `json:"checked_at"`
}

// Report is the body of GET /health.
type Report struct {
	Status    Status            `json:"status"`
	Version   string            `json:"version"`
	UptimeS   float64           `json:"uptime_s"`
	Ready     bool              `json:"ready"`
	Timestamp time.Time         `json:"timestamp"`
	Checks    map[string]Result `json:"checks"`
}

// Config configures a Checker; zero fields take the defaults above.
type Config struct {
	Version         string
	CacheTTL        time.Duration
	RefreshInterval time.Duration
	DefaultTimeout  time.Duration
	// Started is when the daemon started (uptime is measured from it);
	// zero means when New was called.
	Started time.Time
}

// Observer is told about every evaluation (the metrics use it).
type Observer interface {
	Observe(rep Report)
}

// Checker runs the registered checks concurrently, caches the result for
// CacheTTL, and computes the overall status. It is safe for concurrent use.
type Checker struct {
	cfg    Config
	log    *slog.Logger
	checks []Check

	mu       sync.Mutex
	last     *Report
	lastAt   time.Time
	inflight chan struct{} // closed when the running evaluation ends
	ready    bool
	obs      []Observer
	closed   bool // set by Close: no evaluation starts after it

	// running counts evaluations and the check functions they started; a
	// check that outlives its timeout is still counted until it returns.
	// Add happens with mu held and closed false, or inside a counted
	// evaluation, so Close's Wait never races an Add from zero.
	running sync.WaitGroup
}

// ErrClosed is returned by Report and Refresh once Close was called,
// together with the last result (or an unhealthy placeholder).
var ErrClosed = errors.New("health: checker closed")

// New returns a Checker for checks. Names must be unique and non-empty and
// every check needs a Func. log may be nil.
func New(cfg Config, log *slog.Logger, checks ...Check) (*Checker, error) {
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	if cfg.RefreshInterval <= 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.DefaultTimeout <= 0 {
		cfg.DefaultTimeout = DefaultCheckTimeout
	}
	if cfg.Started.IsZero() {
		cfg.Started = time.Now()
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	seen := map[string]bool{}
	for i, c := range checks {
		switch {
		case c.Name == "":
			return nil, fmt.Errorf("health check #%d has an empty Name; give every check a unique name", i)
		case seen[c.Name]:
			return nil, fmt.Errorf("health check %q is registered twice; names must be unique", c.Name)
		case c.Func == nil:
			return nil, fmt.Errorf("health check %q has no Func", c.Name)
		}
		seen[c.Name] = true
	}
	return &Checker{cfg: cfg, log: log, checks: append([]Check(nil), checks...)}, nil
}

// Names returns the registered check names, sorted.
func (c *Checker) Names() []string {
	out := make([]string, 0, len(c.checks))
	for _, ch := range c.checks {
		out = append(out, ch.Name)
	}
	sort.Strings(out)
	return out
}

// AddObserver registers o for every later evaluation.
func (c *Checker) AddObserver(o Observer) {
	c.mu.Lock()
	c.obs = append(c.obs, o)
	c.mu.Unlock()
}

// SetReady records whether boot has finished (GET /ready follows it).
func (c *Checker) SetReady(ready bool) {
	c.mu.Lock()
	c.ready = ready
	c.mu.Unlock()
}

// Ready reports what SetReady recorded.
func (c *Checker) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

// Version is the version reported in /health.
func (c *Checker) Version() string { return c.cfg.Version }

// Report returns the current health: the cached result if it is younger
// than CacheTTL, otherwise a fresh evaluation. Concurrent callers share one
// evaluation. If ctx ends first, Report returns the last result (or an
// unhealthy placeholder) and ctx's error.
//
// An evaluation logs its changes with the correlation ID of the caller
// that started it (a request's, say), or a new one.
func (c *Checker) Report(ctx context.Context) (Report, error) {
	c.mu.Lock()
	if c.closed {
		defer c.mu.Unlock()
		return c.lastOrPlaceholder(), ErrClosed
	}
	if c.last != nil && time.Since(c.lastAt) < c.cfg.CacheTTL {
		rep := c.withLive(*c.last)
		c.mu.Unlock()
		return rep, nil
	}
	wait := c.inflight
	if wait == nil {
		wait = make(chan struct{})
		c.inflight = wait
		c.running.Add(1)
		go c.evaluate(wait, tlog.CorrelationID(ctx))
	}
	c.mu.Unlock()

	select {
	case <-wait:
	case <-ctx.Done():
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.lastOrPlaceholder(), ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.withLive(*c.last), nil
}

// lastOrPlaceholder is the last result, or an unhealthy report with no
// checks if there is none yet. c.mu held.
func (c *Checker) lastOrPlaceholder() Report {
	if c.last != nil {
		return c.withLive(*c.last)
	}
	return Report{Status: Unhealthy, Version: c.cfg.Version, Checks: map[string]Result{}}
}

// Close stops the checker: no evaluation starts after it, and it waits
// until the evaluation in flight (started by Run or by a request that has
// since given up on it) and every check function it started have returned,
// so nothing a check touches — a file under the home directory, a client
// about to be closed — is used after Close returns. If ctx ends first,
// Close returns ctx's error and the stragglers finish on their own. Close
// may be called more than once; Report then returns the last result and
// ErrClosed.
func (c *Checker) Close(ctx context.Context) error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	done := make(chan struct{})
	go func() {
		c.running.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Refresh evaluates now, ignoring the cache, and returns the result.
func (c *Checker) Refresh(ctx context.Context) (Report, error) {
	c.mu.Lock()
	c.lastAt = time.Time{}
	c.mu.Unlock()
	return c.Report(ctx)
}

// Run re-evaluates every RefreshInterval until ctx is done, so a dependency
// that goes down or comes back is noticed (and logged, and visible in the
// metrics) without anyone asking. It returns when ctx is done or the
// checker is closed.
//
// The first evaluation carries ctx's correlation ID, if any (the daemon
// passes its boot's: that evaluation is part of the boot); each later one
// gets a new ID, so the log lines of one refresh share an ID.
func (c *Checker) Run(ctx context.Context) {
	t := time.NewTicker(c.cfg.RefreshInterval)
	defer t.Stop()
	rctx := ctx
	for {
		if _, err := c.Refresh(rctx); errors.Is(err, ErrClosed) {
			return
		}
		rctx = tlog.WithCorrelationID(ctx, tlog.NewCorrelationID())
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// withLive fills the fields that change between evaluations. c.mu held.
func (c *Checker) withLive(r Report) Report {
	r.UptimeS = time.Since(c.cfg.Started).Seconds()
	r.Ready = c.ready
	return r
}

// evaluate runs every check concurrently, each under its own timeout, and
// publishes the result. It runs detached from any request's context so a
// client that hangs up does not poison the cache. cid is the correlation
// ID of the caller that started it ("": a new one) for the change lines.
func (c *Checker) evaluate(done chan struct{}, cid string) {
	defer c.running.Done()
	results := make([]Result, len(c.checks))
	var wg sync.WaitGroup
	for i, ch := range c.checks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.runOne(ch)
		}()
	}
	wg.Wait()

	rep := Report{Status: Healthy, Version: c.cfg.Version, Timestamp: time.Now().UTC(), Checks: make(map[string]Result, len(c.checks))}
	for i, ch := range c.checks {
		r := results[i]
		rep.Checks[ch.Name] = r
		switch {
		case r.Status == StatusFail && ch.Critical:
			rep.Status = Unhealthy
		case r.Status != StatusOK && rep.Status == Healthy:
			rep.Status = Degraded
		}
	}

	c.mu.Lock()
	prev := c.last
	c.last = &rep
	c.lastAt = time.Now()
	c.inflight = nil
	obs := append([]Observer(nil), c.obs...)
	c.mu.Unlock()

	c.logChanges(tlog.WithCorrelationID(context.Background(), cid), prev, &rep)
	for _, o := range obs {
		o.Observe(rep)
	}
	// Waiters wake only after the observers saw the result, so /metrics
	// served right after an evaluation shows it.
	close(done)
}

func (c *Checker) runOne(ch Check) (res Result) {
	timeout := ch.Timeout
	if timeout <= 0 {
		timeout = c.cfg.DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	res.Critical = ch.Critical
	defer func() {
		res.LatencyMS = float64(time.Since(start).Microseconds()) / 1000
		res.CheckedAt = time.Now().UTC()
	}()

	type out struct {
		detail string
		err    error
	}
	ch2 := make(chan out, 1)
	c.running.Add(1) // inside a counted evaluation: never from zero
	go func() {
		defer c.running.Done()
		defer func() {
			if p := recover(); p != nil {
				ch2 <- out{err: fmt.Errorf("check panicked: %v", p)}
			}
		}()
		d, err := ch.Func(ctx)
		ch2 <- out{d, err}
	}()
	var o out
	select {
	case o = <-ch2:
	case <-ctx.Done():
		o = out{err: fmt.Errorf("no answer within %s", timeout)}
	}
	var w *warning
	switch {
	case o.err == nil:
		res.Status, res.Detail = StatusOK, redact.Text(o.detail)
	case errors.As(o.err, &w):
		res.Status, res.Detail = StatusWarn, joinDetail(o.detail, o.err.Error())
	default:
		if errors.Is(o.err, context.DeadlineExceeded) {
			o.err = fmt.Errorf("no answer within %s: %w", timeout, o.err)
		}
		res.Status, res.Detail = StatusFail, joinDetail(o.detail, o.err.Error())
	}
	return res
}

// joinDetail joins a check's detail and its error, without the
// credentials of any URL either quotes.
func joinDetail(detail, msg string) string {
	if detail == "" {
		return redact.Text(msg)
	}
	return redact.Text(detail + ": " + msg)
}

// logChanges logs each check whose status changed, and the overall status
// when it changed, so an operator sees "redis: ok → fail" in the log.
func (c *Checker) logChanges(ctx context.Context, prev, cur *Report) {
	for _, ch := range c.checks {
		now := cur.Checks[ch.Name]
		was := CheckStatus("")
		if prev != nil {
			was = prev.Checks[ch.Name].Status
		}
		if was == now.Status {
			continue
		}
		lvl := slog.LevelInfo
		if now.Status != StatusOK {
			lvl = slog.LevelWarn
		}
		if was == "" && now.Status == StatusOK {
			lvl = slog.LevelDebug
		}
		c.log.Log(ctx, lvl, "health check changed", "check", ch.Name, "from", string(was), "to", string(now.Status), "detail", now.Detail)
	}
	if prev == nil || prev.Status != cur.Status {
		from := Status("")
		if prev != nil {
			from = prev.Status
		}
		c.log.InfoContext(ctx, "health status changed", "from", string(from), "to", string(cur.Status))
	}
}
