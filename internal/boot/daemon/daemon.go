package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/svccheck"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/rag/chromem"
	ragsql "github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramprom"
)

// Paths and thresholds of the daemon. Each says where it comes from.
const (
	// EmbeddedSQLiteFile is the embedded relational store (SQLite, the
	// default), relative to Home, used when TALOS_POSTGRES_URL is not set.
	EmbeddedSQLiteFile = host.EmbeddedSQLiteFile
	// EmbeddedChromemDir is the embedded vector store (chromem-go) used
	// when TALOS_CHROMA_URL is not set and TALOS_MEMORY_STORE is chromem,
	// relative to Home; it is the data/chromadb directory of the tree.
	EmbeddedChromemDir = layout.DataChroma
	// EmbeddedMemoryDimension is the embedding dimension the daemon opens
	// the memories in the relational store with (TALOS_CHROMA_URL unset,
	// TALOS_MEMORY_STORE sql): that of the default embedder
	// (rag/hashembed), which `talos memory` also uses.
	EmbeddedMemoryDimension = ragsql.DefaultDimension
	// EmbeddedChromemDimension is the embedding dimension the daemon opens
	// the embedded vector store with: that of the default embedder
	// (rag/hashembed), which `talos memory` also uses, so both open the
	// same collection.
	EmbeddedChromemDimension = chromem.DefaultDimension
	// DiskWarnFraction: the disk check reports "warn" at 90 % use, as the
	// original specification's health check does.
	DiskWarnFraction = 0.90
	// DiskFailFraction: T103 DISK_CRITICAL means under 10 % free in the
	// registry; we fail (critical, 503) only at 98 %, when writes are about
	// to fail, and warn from 90 %.
	DiskFailFraction = 0.98
	// MemoryWarnBytes: the memory check warns when MemAvailable ≤ 1 GiB, as
	// the original specification's health check does.
	MemoryWarnBytes = 1 << 30
	// WantNoFile is the open-file limit the original specification's init
	// step sets (`ulimit -n 65536`); a lower limit is
	// reported in the step's detail.
	WantNoFile = 65536
	// MinNoFile is the open-file limit below which the init step warns
	// (degraded): the daemon, its clients and the health server need a few
	// hundred descriptors; below 4096 a busy day runs out.
	MinNoFile = 4096
	// ShutdownGrace is how long Stop lets in-flight health requests finish
	// (drain for 15 s; `talos run` ends the process anyway after 20 s).
	ShutdownGrace = 15 * time.Second
)

// Check and step names, as they appear in /health and in .ready.
const (
	NameInit        = "init"
	NameDirectories = "directories"
	NameConfig      = "config"
	NameRedis       = "redis"
	NameChroma      = "chroma"
	NamePostgres    = "postgres"
	NameDocker      = "docker"
	NameSocketProxy = "socket-proxy"
	NameOllama      = "ollama"
	NameHealth      = "health-server"
	NameReady       = "ready"
	NameDisk        = "disk"
	NameMemory      = "memory"
	NameHome        = "home"
)

// Options are the daemon's dependencies and test hooks. The zero value is
// the production setting.
type Options struct {
	// Version is reported in /health, /metrics and .ready.
	Version string
	// Log receives the boot and health logs; nil discards them.
	Log *slog.Logger
	// ExtraSteps run after the service steps and before the health server
	// starts (genesis skills, schema, collections: other packages' steps).
	ExtraSteps []boot.Step
	// ExtraChecks are added to /health after the daemon's own (the GPU,
	// the breaker, …). Their names must not clash with the Name constants.
	ExtraChecks []health.Check
	// ReadyPath is where the ready marker goes; empty means
	// <Home>/.ready (the original specification's /talos/.ready).
	ReadyPath string
	// HealthAddr overrides cfg.HealthAddr (tests use 127.0.0.1:0).
	HealthAddr string
	// RetryDelay overrides boot.RetryDelay between service probes (tests).
	RetryDelay time.Duration
	// Attempts overrides every service's attempt count when > 0 (tests).
	Attempts int
	// HealthRefresh overrides the background health refresh interval.
	HealthRefresh time.Duration
	// HealthCacheTTL overrides how long a /health result is reused.
	HealthCacheTTL time.Duration

	// GPU turns on the daemon's GPU wiring (`talos run` passes
	// nvml.Detect): a "gpu" boot step and health check, always listed, ok
	// with NoGPUDetail on a machine without a GPU; and, when the GPU is
	// readable and TALOS_OLLAMA_URL is set, a vram.Mutex driving Ollama
	// (see VRAM), served read-only at vram.HandlerPath, with
	// vram.ResetPath (POST, operator credentials) to leave Error, and
	// exported on /metrics as talos_vram_*. Nil leaves the GPU out entirely.
	GPU vram.GPU
	// VRAMRuntime replaces the model runtime the VRAM mutex drives; nil
	// means the llm/ollama client for TALOS_OLLAMA_URL (tests use a fake).
	VRAMRuntime vram.Runtime
	// VRAMModels are the models the VRAM mutex may load, keyed by the
	// runtime's model names; nil means TALOS_VRAM_MODELS from the config.
	VRAMModels map[string]vram.Model
	// Handlers are extra read-only endpoints the health server serves next
	// to /health, keyed by path (health.ServerConfig.Handlers).
	Handlers map[string]http.Handler
}

// Daemon is a booted Talos: its service probes, health checker and server,
// and ready marker.
type Daemon struct {
	cfg  *config.Config
	opts Options
	log  *slog.Logger
	hc   *http.Client
	// bootID is the boot's correlation ID and blog the logger of the boot
	// (log with bootID on every line); both are set once, at the top of
	// Start, before any step runs.
	bootID string
	blog   *slog.Logger

	redis  *svccheck.Redis
	sql    *sqldb.DB     // the relational store, open after the postgres step
	memory *ragsql.Store // memories in the relational store, open after the chroma step (TALOS_MEMORY_STORE=sql)
	// memoryErr is why the memories in the relational store could not be
	// opened at boot (the chroma check reports it).
	memoryErr error
	docker    *svccheck.Docker
	proxy     *svccheck.Docker

	vram       *vram.Mutex // nil without a readable GPU and Ollama
	gpuAbsent  bool        // the boot found no GPU (CPU mode)
	gpuBootErr error       // the boot found a GPU it could not read

	checker *health.Checker
	metrics *health.Metrics
	server  *health.Server

	report  boot.Report
	started time.Time
	// progress holds the steps finished so far, during Start. A step the
	// runner stopped waiting for (the boot was cancelled) may still read it
	// while the runner appends, hence the lock.
	progressMu sync.Mutex
	progress   []boot.StepResult
	readyPath  string

	stopRefresh context.CancelFunc
	refreshDone chan struct{}
	stopOnce    sync.Once
}

// New prepares a daemon for cfg (already loaded and validated). It opens no
// connection; Start does the work.
func New(cfg *config.Config, opts Options) (*Daemon, error) {
	if cfg == nil {
		return nil, errors.New("daemon.New: a config is required")
	}
	if cfg.Home == "" {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "daemon.New", "config has no Home; set TALOS_HOME or pass --home")
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Version == "" {
		opts.Version = "dev"
	}
	d := &Daemon{cfg: cfg, opts: opts, log: log, hc: &http.Client{Timeout: svccheck.DefaultProbeTimeout}}
	d.readyPath = opts.ReadyPath
	if d.readyPath == "" {
		d.readyPath = DefaultReadyPath(cfg.Home)
	}
	return d, nil
}

// DefaultReadyPath is where the ready marker goes for home:
// <home>/.ready (the original specification's /talos/.ready).
func DefaultReadyPath(home string) string { return filepath.Join(home, boot.ReadyFileName) }

// ReadyPath is where the ready marker is written.
func (d *Daemon) ReadyPath() string { return d.readyPath }

// Report is the boot report (complete after Start returns).
func (d *Daemon) Report() boot.Report { return d.report }

// HealthAddr is the health server's bound address ("" before it started).
func (d *Daemon) HealthAddr() string {
	if d.server == nil {
		return ""
	}
	return d.server.Addr()
}

// Checker is the daemon's health checker (nil before Start).
func (d *Daemon) Checker() *health.Checker { return d.checker }

// Metrics is the daemon's Prometheus registry holder, served on /metrics;
// other components register their collectors with Metrics().Registry()
// (nil before Start).
func (d *Daemon) Metrics() *health.Metrics { return d.metrics }

// Start runs the boot steps (listed in the package comment), starts the
// health server and writes the ready marker. A fatal step stops the boot:
// Start writes the failure marker, releases what it opened and returns the
// step's error (a *boot.StepError carrying the step's T-code). On success
// the daemon runs until Stop.
//
// The boot has one correlation ID (tlog): ctx's, if it carries one (so a
// caller can put the same ID on its own audit lines of the boot), else a
// new one. Every log line of the boot carries it; CorrelationID returns it.
func (d *Daemon) Start(ctx context.Context) error {
	ctx, d.bootID = tlog.EnsureCorrelationID(ctx)
	d.blog = d.log.With(slog.String(tlog.CorrelationKey, d.bootID))
	// A stale marker from an earlier run must not announce readiness.
	if err := boot.RemoveReady(d.readyPath); err != nil {
		return err
	}
	d.started = time.Now()
	d.progressMu.Lock()
	d.progress = nil
	d.progressMu.Unlock()
	runner := boot.New(boot.Config{OnStep: func(r boot.StepResult) {
		d.progressMu.Lock()
		d.progress = append(d.progress, r)
		d.progressMu.Unlock()
	}}, d.blog)
	d.blog.Info("boot starting", "home", d.cfg.Home, "version", d.opts.Version, "instance", d.cfg.InstanceID)
	rep, err := runner.Run(ctx, d.steps())
	d.report = rep
	if err != nil {
		if d.checker != nil {
			d.checker.SetReady(false)
		}
		if rep.FailedStep != "" {
			failed := d.readyMarker(rep)
			if werr := boot.WriteReady(d.readyPath, failed); werr != nil {
				d.blog.Warn("could not write the failure marker", "path", d.readyPath, "err", werr)
			}
		} else if rerr := boot.RemoveReady(d.readyPath); rerr != nil {
			d.blog.Warn("could not remove the ready marker", "path", d.readyPath, "err", rerr)
		}
		sctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if d.server != nil {
			_ = d.server.Shutdown(sctx)
		}
		cancel()
		// The checks get their own time: their timeouts, not what the
		// server's shutdown left of a second.
		cctx, cancel := context.WithTimeout(context.Background(), checkDrain)
		d.release(cctx)
		cancel()
		return err
	}
	d.blog.Info("boot complete", "duration", rep.Duration, "degraded", rep.Degraded, "health", d.server.URL())
	return nil
}

// Run starts the daemon, waits for ctx to be done (SIGINT/SIGTERM in `talos
// run`), then stops it. It returns Start's error, or Stop's.
func (d *Daemon) Run(ctx context.Context) error {
	if err := d.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownGrace)
	defer cancel()
	return d.Stop(sctx)
}

// Stop shuts down in order: mark not ready and remove the marker, stop
// accepting health requests (draining the ones in flight until ctx is
// done), stop the background checks and wait for the one in flight (also
// until ctx is done: Stop never runs past ctx, which callers budget), close
// the service clients. It is safe to call more than once.
func (d *Daemon) Stop(ctx context.Context) error {
	var err error
	d.stopOnce.Do(func() {
		d.log.Info("shutting down")
		if d.checker != nil {
			d.checker.SetReady(false)
		}
		err = boot.RemoveReady(d.readyPath)
		if d.server != nil {
			if serr := d.server.Shutdown(ctx); serr != nil && err == nil {
				err = serr
			}
		}
		d.release(ctx)
		d.log.Info("stopped")
	})
	return err
}

// release stops the background checks and waits, until ctx is done, for
// an evaluation still in flight (one a request gave up on keeps running)
// before it closes the clients the checks use, so that normally nothing
// is touched after Stop returns, not even the home directory's write
// probe. A check that outlives ctx is logged, not an error (the stop is
// still clean); it then runs on against closed clients and may touch the
// home directory after Stop returned, until its own timeout.
func (d *Daemon) release(ctx context.Context) {
	if d.stopRefresh != nil {
		d.stopRefresh()
		<-d.refreshDone
		d.stopRefresh = nil
	}
	if d.checker != nil {
		if err := d.checker.Close(ctx); err != nil {
			d.log.Warn("a health check was still running when the stop's time ran out; closing the clients under it", "err", err)
		}
	}
	if d.redis != nil {
		_ = d.redis.Close()
	}
	if d.memory != nil {
		_ = d.memory.Close()
	}
	if d.sql != nil {
		_ = d.sql.Close()
	}
	if d.docker != nil {
		_ = d.docker.Close()
	}
	if d.proxy != nil {
		_ = d.proxy.Close()
	}
	if d.vram != nil {
		_ = d.vram.Close() // fails waiting Acquires; idempotent
	}
}

func (d *Daemon) retry(attempts int) boot.RetryPolicy {
	p := boot.RetryPolicy{Attempts: attempts, Delay: boot.RetryDelay}
	if d.opts.RetryDelay > 0 {
		p.Delay = d.opts.RetryDelay
	}
	if d.opts.Attempts > 0 {
		p.Attempts = d.opts.Attempts
	}
	return p
}

// stepTimeout leaves room for every attempt of a probe plus the waits.
func stepTimeout(p boot.RetryPolicy) time.Duration {
	return time.Duration(p.Attempts)*(svccheck.DefaultProbeTimeout+p.Delay) + 5*time.Second
}

func (d *Daemon) onRetry(what string, p boot.RetryPolicy) func(int, error) {
	return func(attempt int, err error) {
		d.bootLog().Info(fmt.Sprintf("Waiting for %s... (attempt %d/%d)", what, attempt, p.Attempts), "err", err)
	}
}

// CorrelationID returns the boot's correlation ID (set by Start; "" before).
func (d *Daemon) CorrelationID() string { return d.bootID }

// bootLog is the logger of boot steps: every line carries the boot's
// correlation ID. Long-lived components (health server, checker, clients)
// get d.log instead, so their later lines do not claim to be the boot's.
func (d *Daemon) bootLog() *slog.Logger {
	if d.blog != nil {
		return d.blog
	}
	return d.log
}

// home returns an absolute path under Home.
func (d *Daemon) home(rel string) string { return filepath.Join(d.cfg.Home, filepath.FromSlash(rel)) }

// steps builds the boot steps for this configuration.
func (d *Daemon) steps() []boot.Step {
	steps := []boot.Step{
		{Name: NameInit, Timeout: 3 * time.Second, Run: d.stepInit},
		{Name: NameDirectories, Timeout: 10 * time.Second, Fatal: true, Run: d.stepDirectories},
		{Name: NameConfig, Timeout: 5 * time.Second, Fatal: true, Run: d.stepConfig},
		{Name: NamePrompts, Timeout: 5 * time.Second, Fatal: true, Run: d.stepPrompts},
	}
	rp := d.retry(boot.RedisAttempts)
	steps = append(steps, boot.Step{Name: NameRedis, Timeout: stepTimeout(rp), Fatal: true, Run: d.stepRedis})
	cp := d.retry(boot.ChromaAttempts)
	chromaStep := boot.Step{Name: NameChroma, Timeout: stepTimeout(cp), Fatal: true, Run: d.stepChroma}
	pp := d.retry(boot.PostgresAttempts)
	postgresStep := boot.Step{Name: NamePostgres, Timeout: stepTimeout(pp), Fatal: true, Run: d.stepPostgres}
	if d.memoryInSQL() {
		// The memories live in the relational store: open it first.
		// Loading 100,000 memories takes 3–10 s on 2 busy cores (25 s seen
		// under a load average of 15): a busy machine must not fail the boot.
		chromaStep.Timeout = 2 * time.Minute
		steps = append(steps, postgresStep, chromaStep)
	} else {
		steps = append(steps, chromaStep, postgresStep)
	}
	dp := d.retry(boot.DockerAttempts)
	steps = append(steps,
		boot.Step{Name: NameDocker, Timeout: stepTimeout(dp), Fatal: true, Run: d.stepDocker},
		boot.Step{Name: NameSocketProxy, Timeout: stepTimeout(dp), Fatal: true, Run: d.stepSocketProxy},
		boot.Step{Name: NameOllama, Timeout: 10 * time.Second, Run: d.stepOllama},
	)
	if d.opts.GPU != nil {
		steps = append(steps, boot.Step{Name: NameGPU, Timeout: 10 * time.Second, Run: d.stepGPU})
	}
	steps = append(steps, d.opts.ExtraSteps...)
	steps = append(steps,
		boot.Step{Name: NameHealth, Timeout: 5 * time.Second, Fatal: true, Run: d.stepHealth},
		boot.Step{Name: NameReady, Timeout: 5 * time.Second, Run: d.stepReady},
	)
	return steps
}

// stepInit is the first boot step. The original specification's "must be
// PID 1" is impossible under tini; we report PID 1 / subreaper and the
// open-file limit, and never fail.
func (d *Daemon) stepInit(ctx context.Context) (string, error) {
	role := "not PID 1 and not a subreaper (orphaned grandchildren go to the system's init)"
	switch {
	case os.Getpid() == 1:
		role = "PID 1"
	case isSubreaper():
		role = "child subreaper"
	}
	soft, hard, err := nofile()
	if err != nil {
		return fmt.Sprintf("pid %d, %s", os.Getpid(), role), nil
	}
	detail := fmt.Sprintf("pid %d, %s, open files %d (hard %d)", os.Getpid(), role, soft, hard)
	if soft < WantNoFile {
		detail += fmt.Sprintf(", below the spec's %d", WantNoFile)
	}
	if soft < MinNoFile {
		return detail, boot.Warn(fmt.Errorf("open-file limit %d is below %d; raise the hard limit (ulimit -Hn, or LimitNOFILE= in the service unit)", soft, MinNoFile))
	}
	return detail, nil
}

// stepDirectories checks the directory tree: every directory must exist
// (fatal T005, `talos init` creates them); wrong modes are corrected and
// listed; a keys directory open to others is refused (package layout).
func (d *Daemon) stepDirectories(ctx context.Context) (string, error) {
	l, err := layout.New(d.cfg.Home, d.bootLog())
	if err != nil {
		return "", err
	}
	fixes, err := l.Verify()
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("%d directories under %s verified", len(layout.Tree()), d.cfg.Home)
	if len(fixes) > 0 {
		s := make([]string, len(fixes))
		for i, f := range fixes {
			s[i] = f.String()
		}
		detail += "; " + strings.Join(s, "; ")
	}
	return detail, nil
}

// stepConfig: the configuration was loaded before boot; re-validate it (a
// fatal T004/T006) and report TALOS_VERSION, TRUST_LEVEL, LOG_LEVEL and
// whether Gemini is on.
func (d *Daemon) stepConfig(ctx context.Context) (string, error) {
	if err := d.cfg.Validate(); err != nil {
		return "", err
	}
	return fmt.Sprintf("TALOS_VERSION=%s TRUST_LEVEL=%d LOG_LEVEL=%s, Gemini %s",
		d.cfg.TalosVersion, d.cfg.TrustLevel, d.cfg.LogLevel, onOff(d.cfg.GeminiEnabled, "enabled", "off (local-only)")), nil
}

func onOff(b bool, on, off string) string {
	if b {
		return on
	}
	return off
}

// memoryInSQL reports whether the memories live in the relational store:
// TALOS_CHROMA_URL unset and TALOS_MEMORY_STORE sql (the default).
func (d *Daemon) memoryInSQL() bool {
	return d.cfg.ChromaURL == "" && d.cfg.MemoryStore != config.MemoryStoreChromem
}

// Detail texts for services that are not configured: the daemon says which
// embedded default it uses.
func (d *Daemon) embeddedChroma() string {
	return "not configured (TALOS_CHROMA_URL unset), using the embedded chromem-go store at " + d.home(EmbeddedChromemDir)
}

// openSQLMemory opens the memories in the relational store (rag/sqlstore
// loads every record; a damaged one is skipped and named) and describes
// them.
func (d *Daemon) openSQLMemory(ctx context.Context) (string, error) {
	if d.sql == nil {
		return "", talos.E(talos.CodeChroma, "boot.chroma", "the relational store the memories live in is not open (the postgres step did not run)", nil)
	}
	s, err := ragsql.Open(ctx, d.sql, ragsql.Config{Dimension: EmbeddedMemoryDimension, Logger: d.bootLog()})
	if err != nil {
		// Degraded, not fatal: the daemon runs without long-term memory,
		// and /health says why.
		d.memoryErr = talos.E(talos.CodeChroma, "boot.chroma", "the memories in "+d.sqlWhere(d.sql)+" cannot be opened", err)
		return "memories in " + d.sqlWhere(d.sql) + " not usable", boot.Warn(d.memoryErr)
	}
	d.memory = s
	detail, err := d.describeSQLMemory(ctx, s)
	if err != nil {
		return "not configured (TALOS_CHROMA_URL unset), using " + detail, boot.Warn(err)
	}
	return "not configured (TALOS_CHROMA_URL unset), using " + detail, nil
}

// describeSQLMemory is the detail of the memory store in the relational
// store, for the chroma step and check: where, the collection and its
// record count (rows in the database, so memories `talos memory add` wrote
// after the boot count too); a warning naming the damaged records the
// store skipped when it was opened.
func (d *Daemon) describeSQLMemory(ctx context.Context, s *ragsql.Store) (string, error) {
	n, err := s.Stored(ctx)
	if err != nil {
		return "", err
	}
	detail := fmt.Sprintf("memories in %s, collection %s: %d records", d.sqlWhere(d.sql), s.Collection(), n)
	if bad := s.Damaged(); len(bad) > 0 {
		shown := bad
		if len(shown) > 20 {
			shown = shown[:20]
		}
		ids := make([]string, len(shown))
		for i, id := range shown {
			ids[i] = strconv.Quote(id)
		}
		more := ""
		if len(bad) > len(shown) {
			more = fmt.Sprintf(" and %d more", len(bad)-len(shown))
		}
		detail += fmt.Sprintf(", %d damaged", len(bad))
		return detail, health.Warnf("%s; %d damaged memories skipped: %s%s (restore them from a backup or delete them; the daemon log names the fault)",
			detail, len(bad), strings.Join(ids, ", "), more)
	}
	return detail, nil
}

// statEmbeddedChroma checks the embedded vector store without opening it
// (chromem.Open would read every record into the daemon's memory, and the
// daemon does not use the store yet) and describes it.
func (d *Daemon) statEmbeddedChroma() (string, error) {
	dir := d.home(EmbeddedChromemDir)
	info, err := chromem.Stat(chromem.Config{Path: dir, Dimension: EmbeddedChromemDimension})
	if err != nil {
		return "embedded chromem-go store at " + dir + " is not usable", err
	}
	return fmt.Sprintf("embedded chromem-go store at %s, collection %s: %d records", dir, info.Collection, info.Records), nil
}

const (
	redisOff    = "in-process memory store (TALOS_REDIS_URL unset)"
	postgresOff = "embedded SQLite (TALOS_POSTGRES_URL unset)"
	dockerOff   = "not configured (TALOS_DOCKER_HOST unset): skills cannot run in a sandbox"
	proxyOff    = "not configured (SOCKET_PROXY_URL unset)"
	ollamaOff   = "not configured (TALOS_OLLAMA_URL unset): no local model"
)

// stepRedis checks Redis: PING up to 10 times at 1 s (fatal T001), check
// the eviction policy (a warning), and a write/read/delete probe (fatal).
func (d *Daemon) stepRedis(ctx context.Context) (string, error) {
	if d.cfg.RedisURL == "" {
		return "not configured: " + redisOff, nil
	}
	r, err := svccheck.NewRedis(d.cfg.RedisURL)
	if err != nil {
		return "", err
	}
	d.redis = r
	p := d.retry(boot.RedisAttempts)
	if err := boot.Retry(ctx, p, d.onRetry("Redis", p), r.Ping); err != nil {
		return "", talos.E(talos.CodeRedis, "boot.redis", fmt.Sprintf("Redis connection failed after %d attempts", p.Attempts), err)
	}
	if err := r.Probe(ctx); err != nil {
		return "", err
	}
	desc, perr := r.CheckPolicy(ctx, d.cfg.RedisMaxMemoryPolicy)
	return redisDetail(r, desc), boot.Warn(perr)
}

// stepChroma checks Chroma on its v2 API: heartbeat up to 15 times at 1 s
// (fatal T002). Without Chroma the memories live in the relational store
// by default (TALOS_MEMORY_STORE sql; the step then runs after postgres):
// they are opened, and a store that cannot be opened (another embedding
// dimension) or a damaged record degrades, named. With TALOS_MEMORY_STORE chromem the
// embedded directory must be usable
// (fatal) and the embedded chromem-go store is checked (chromem.Stat: its
// collection's dimension and record count); a store that does not pass
// (corrupt, another embedding dimension) degrades.
func (d *Daemon) stepChroma(ctx context.Context) (string, error) {
	if d.memoryInSQL() {
		return d.openSQLMemory(ctx)
	}
	if d.cfg.ChromaURL == "" {
		dir := d.home(EmbeddedChromemDir)
		if err := writableDir(dir); err != nil {
			return "", talos.E(talos.CodeChroma, "boot.chroma", "the embedded vector store's directory is unusable", err)
		}
		detail, err := d.statEmbeddedChroma()
		if err != nil {
			return d.embeddedChroma(), boot.Warn(err)
		}
		return "not configured (TALOS_CHROMA_URL unset), using the " + detail, nil
	}
	p := d.retry(boot.ChromaAttempts)
	err := boot.Retry(ctx, p, d.onRetry("ChromaDB", p), func(ctx context.Context) error {
		return svccheck.ChromaHeartbeat(ctx, d.hc, d.cfg.ChromaURL)
	})
	if err != nil {
		return "", talos.E(talos.CodeChroma, "boot.chroma", fmt.Sprintf("ChromaDB connection failed after %d attempts", p.Attempts), err)
	}
	return "heartbeat from " + redact.URL(d.cfg.ChromaURL), nil
}

// stepPostgres opens the relational store: PostgreSQL when
// TALOS_POSTGRES_URL is set (connect up to 15 times at 1 s, fatal T003),
// else the embedded SQLite file; then every component's migrations
// (host.Schemas) are applied, so a schema this Talos cannot use stops the boot.
func (d *Daemon) stepPostgres(ctx context.Context) (string, error) {
	var db *sqldb.DB
	if d.cfg.PostgresURL == "" {
		var err error
		if db, err = sqldb.Open(ctx, host.SQLDSN(d.cfg)); err != nil {
			return "", err
		}
	} else {
		p := d.retry(boot.PostgresAttempts)
		err := boot.Retry(ctx, p, d.onRetry("PostgreSQL", p), func(ctx context.Context) error {
			var err error
			db, err = sqldb.Open(ctx, host.SQLDSN(d.cfg))
			return err
		})
		if err != nil {
			return "", talos.E(talos.CodePostgres, "boot.postgres", fmt.Sprintf("PostgreSQL connection failed after %d attempts", p.Attempts), err)
		}
	}
	for _, sc := range host.Schemas() {
		if _, err := db.Migrate(ctx, sc.Component, sc.Migrations); err != nil {
			db.Close()
			return "", err
		}
	}
	d.sql = db
	return d.describeSQL(ctx, db)
}

// describeSQL names the relational store and its schema versions, for the
// boot step and /health: "embedded SQLite at PATH (TALOS_POSTGRES_URL
// unset); schema strikes v2" or "PostgreSQL at URL; schema …".
func (d *Daemon) describeSQL(ctx context.Context, db *sqldb.DB) (string, error) {
	vs, err := db.Versions(ctx)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, sc := range host.Schemas() {
		parts = append(parts, fmt.Sprintf("%s v%d", sc.Component, vs[sc.Component]))
	}
	return d.sqlWhere(db) + "; schema " + strings.Join(parts, ", "), nil
}

// sqlWhere names the relational store: "embedded SQLite
// (TALOS_POSTGRES_URL unset) at PATH" or "PostgreSQL at URL" (redacted).
func (d *Daemon) sqlWhere(db *sqldb.DB) string {
	if db.Dialect() == sqldb.SQLite {
		return postgresOff + " at " + d.home(EmbeddedSQLiteFile)
	}
	return "PostgreSQL at " + redact.URL(d.cfg.PostgresURL)
}

// stepDocker pings the engine with API-version negotiation (fatal T009
// when configured: skills cannot run without it).
func (d *Daemon) stepDocker(ctx context.Context) (string, error) {
	if d.cfg.DockerHost == "" {
		return dockerOff, nil
	}
	c, err := svccheck.NewDocker(d.cfg.DockerHost)
	if err != nil {
		return "", err
	}
	d.docker = c
	p := d.retry(boot.DockerAttempts)
	var api string
	err = boot.Retry(ctx, p, d.onRetry("Docker", p), func(ctx context.Context) error {
		v, err := c.Ping(ctx)
		api = v
		return err
	})
	if err != nil {
		return "", talos.E(talos.CodeDocker, "boot.docker", fmt.Sprintf("Docker engine unreachable after %d attempts", p.Attempts), err)
	}
	return fmt.Sprintf("engine at %s, API %s", redact.URL(d.cfg.DockerHost), api), nil
}

// stepSocketProxy checks that the socket proxy is alive: when the proxy is
// enabled and configured, its /_ping must answer (fatal T008). The
// policy self-test belongs to package sockproxy.
func (d *Daemon) stepSocketProxy(ctx context.Context) (string, error) {
	if !d.cfg.SocketProxyEnabled {
		return "SOCKET_PROXY_ENABLED=false", boot.ErrSkip
	}
	if d.cfg.SocketProxyURL == "" {
		return proxyOff, boot.ErrSkip
	}
	c, err := svccheck.NewDockerFor(dockerHostOf(d.cfg.SocketProxyURL), "SOCKET_PROXY_URL")
	if err != nil {
		return "", err
	}
	d.proxy = c
	p := d.retry(boot.DockerAttempts)
	err = boot.Retry(ctx, p, d.onRetry("socket proxy", p), func(ctx context.Context) error {
		_, err := c.Ping(ctx)
		return err
	})
	if err != nil {
		return "", talos.E(talos.CodeSockProxy, "boot.socket-proxy",
			fmt.Sprintf("Socket proxy not responding at %s", redact.URL(d.cfg.SocketProxyURL)), err)
	}
	return "proxy at " + redact.URL(d.cfg.SocketProxyURL) + " answers /_ping", nil
}

// dockerHostOf turns http://host:port (the spec's SOCKET_PROXY_URL form)
// into the tcp://host:port the Docker client expects.
func dockerHostOf(u string) string {
	for _, pre := range []string{"http://", "https://"} {
		if len(u) > len(pre) && u[:len(pre)] == pre {
			return "tcp://" + u[len(pre):]
		}
	}
	return u
}

// stepOllama probes the local model runtime once (the original
// specification never does); a failure only degrades.
func (d *Daemon) stepOllama(ctx context.Context) (string, error) {
	if d.cfg.OllamaURL == "" {
		return ollamaOff, nil
	}
	v, err := svccheck.OllamaVersion(ctx, d.hc, d.cfg.OllamaURL)
	if err != nil {
		return "", err
	}
	return "Ollama " + v + " at " + redact.URL(d.cfg.OllamaURL), nil
}

// stepHealth registers every check and serves /health, /ready and /metrics
// on loopback (fatal if it cannot bind).
func (d *Daemon) stepHealth(ctx context.Context) (string, error) {
	checker, err := health.New(health.Config{
		Version:         d.opts.Version,
		Started:         d.started,
		RefreshInterval: d.opts.HealthRefresh,
		CacheTTL:        d.opts.HealthCacheTTL,
	}, d.log, append(d.checks(), d.opts.ExtraChecks...)...)
	if err != nil {
		return "", err
	}
	metrics := health.NewMetrics(d.opts.Version)
	checker.AddObserver(metrics)
	handlers := make(map[string]http.Handler, len(d.opts.Handlers)+1)
	for p, h := range d.opts.Handlers {
		handlers[p] = h
	}
	if d.vram != nil {
		if _, taken := handlers[vram.HandlerPath]; taken {
			return "", talos.Errorf(talos.CodeConfigInvalid, "boot.health-server", "Options.Handlers has %s, where the VRAM mutex is served; use another path", vram.HandlerPath)
		}
		handlers[vram.HandlerPath] = vram.Handler(d.vram)
		handlers[vram.ResetPath] = operatorOnly(d.cfg.BasicAuthUser, d.cfg.BasicAuthPass.Value(), vram.ResetHandler(d.vram))
		if err := metrics.Registry().Register(vramprom.NewCollector(d.vram)); err != nil {
			return "", fmt.Errorf("registering the VRAM mutex's metrics: %w", err)
		}
	}
	addr := d.cfg.HealthAddr
	if d.opts.HealthAddr != "" {
		addr = d.opts.HealthAddr
	}
	if addr == "" {
		addr = config.DefaultHealthAddr
	}
	srv, err := health.NewServer(health.ServerConfig{Addr: addr, Handlers: handlers}, checker, metrics, d.log)
	if err != nil {
		return "", talos.E(talos.CodeConfigInvalid, "boot.health-server", "refusing the health address", err)
	}
	if err := srv.StartContext(ctx); err != nil {
		return "", err
	}
	d.checker, d.metrics, d.server = checker, metrics, srv
	// The first evaluation is part of the boot: it carries the boot's ID.
	rctx, cancel := context.WithCancel(tlog.WithCorrelationID(context.Background(), d.bootID))
	d.stopRefresh, d.refreshDone = cancel, make(chan struct{})
	go func() {
		defer close(d.refreshDone)
		checker.Run(rctx)
	}()
	return fmt.Sprintf("serving %s (checks: %v)", srv.URL(), checker.Names()), nil
}

// stepReady writes the ready marker atomically with the real outcome of
// every step so far (a failure only degrades).
func (d *Daemon) stepReady(ctx context.Context) (string, error) {
	// The report is still being built: use the steps finished so far, and
	// measure the boot up to now.
	d.progressMu.Lock()
	steps := slices.Clone(d.progress)
	d.progressMu.Unlock()
	if err := ctx.Err(); err != nil {
		return "", err // the boot was cancelled: announce nothing
	}
	rep := boot.Report{Started: d.started, Duration: time.Since(d.started), Steps: steps}
	for _, s := range steps {
		if s.Outcome == boot.Degraded {
			rep.Degraded = true
		}
	}
	r := d.readyMarker(rep)
	if err := boot.WriteReady(d.readyPath, r); err != nil {
		return "", err
	}
	d.checker.SetReady(true)
	return fmt.Sprintf("%s written (%s, boot %.0f ms)", d.readyPath, r.Status, r.BootDurationMS), nil
}

// checkDrain is how long a failed boot waits for a health check in flight
// before it closes the clients: a little over the checks' default timeout.
const checkDrain = health.DefaultCheckTimeout + time.Second

// readyMarker is the marker for rep, naming this installation
// (TALOS_INSTANCE_ID) when it has an ID.
func (d *Daemon) readyMarker(rep boot.Report) boot.Ready {
	r := boot.NewReady(rep, d.opts.Version, d.HealthAddr())
	r.InstanceID = d.cfg.InstanceID
	return r
}

// writableDir checks dir is a directory this process can create files in.
func writableDir(dir string) error {
	if err := isDir(dir); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".talos-write-test-*")
	if err != nil {
		return fmt.Errorf("%s is not writable: %w", dir, err)
	}
	name := f.Name()
	_ = f.Close()
	return os.Remove(name)
}
