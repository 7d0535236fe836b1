package daemon_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/svccheck"
	"github.com/talos-ironclad/talos/internal/svccheck/svcchecktest"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/chromem"
	ragsql "github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

const testPass = "Xy7!kq2Lm9#pQw4Zr"

// newHome makes a Talos home with the full tree and returns a validated
// config for it; env adds variables (TALOS_REDIS_URL, …).
func newHome(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	home := t.TempDir()
	l, err := layout.New(home, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Create(); err != nil {
		t.Fatal(err)
	}
	return loadConfig(t, home, env)
}

func loadConfig(t *testing.T, home string, env map[string]string) *config.Config {
	t.Helper()
	vars := map[string]string{"BASIC_AUTH_PASS": testPass}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(config.LoadOptions{Home: home, SkipFiles: true, LookupEnv: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func fastOpts() daemon.Options {
	return daemon.Options{Version: "test", HealthAddr: "127.0.0.1:0", RetryDelay: 10 * time.Millisecond,
		Attempts: 2, HealthCacheTTL: time.Nanosecond, HealthRefresh: time.Hour} // every /health evaluates afresh: a state change right after a request is seen
}

func start(t *testing.T, cfg *config.Config, opts daemon.Options) *daemon.Daemon {
	t.Helper()
	d, err := daemon.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	return d
}

// getHealth returns what /health answers about the daemon's state now: it
// first evaluates the checks afresh, so the answer cannot be a result
// cached (for HealthCacheTTL) before the test's last change.
func getHealth(t *testing.T, d *daemon.Daemon) (int, health.Report) {
	t.Helper()
	if _, err := d.Checker().Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + d.HealthAddr() + "/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rep health.Report
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, rep
}

func TestNoServicesReadyFastWithEmbeddedDefaults(t *testing.T) {
	const instance = "3f2b8c1e-7a4d-4e6b-9c2a-5d8e1f0a7b3c"
	cfg := newHome(t, map[string]string{"TALOS_INSTANCE_ID": instance})
	// A stale marker from a crashed run must not survive the boot.
	if err := os.WriteFile(filepath.Join(cfg.Home, ".ready"), []byte(`{"status":"ready","pid":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	d := start(t, cfg, fastOpts())
	took := time.Since(began)
	t.Logf("ready in %v (boot report %v)", took, d.Report().Duration)
	for _, s := range d.Report().Steps {
		t.Logf("  step %-13s %-8s %8.3f ms", s.Name, s.Outcome, float64(s.Duration.Microseconds())/1000)
	}
	if took >= 2*time.Second {
		t.Fatalf("ready in %v, want under 2 s", took)
	}
	rep := d.Report()
	if rep.FailedStep != "" {
		t.Fatalf("report %+v", rep)
	}
	for _, s := range rep.Steps {
		if s.Outcome == boot.Failed {
			t.Fatalf("step %s failed: %s", s.Name, s.Error)
		}
	}

	r, err := boot.ReadReady(d.ReadyPath())
	if err != nil {
		t.Fatal(err)
	}
	if r.PID != os.Getpid() || r.HealthAddr != d.HealthAddr() || r.Status == boot.StatusFailed || len(r.Steps) < 10 || r.InstanceID != instance {
		t.Fatalf("marker %+v", r)
	}
	st, _ := os.Stat(d.ReadyPath())
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("marker mode %o", st.Mode().Perm())
	}

	code, h := getHealth(t, d)
	if code != 200 || !h.Ready {
		t.Fatalf("/health %d %+v", code, h)
	}
	want := map[string]string{
		"redis":    "in-process memory store (TALOS_REDIS_URL unset)",
		"postgres": "embedded SQLite (TALOS_POSTGRES_URL unset) at " + filepath.Join(cfg.Home, "data", "talos.db") + "; schema strikes v2, quarantine v2, rag v2",
		"chroma":   "memories in embedded SQLite (TALOS_POSTGRES_URL unset) at " + filepath.Join(cfg.Home, "data", "talos.db") + ", collection talos_memory: 0 records",
		"docker":   "not configured",
		"ollama":   "not configured",
		"home":     "writable",
		"disk":     "used",
		"memory":   "available",
	}
	for name, detail := range want {
		c, ok := h.Checks[name]
		if !ok {
			t.Fatalf("/health lacks check %q: %+v", name, h.Checks)
		}
		if !strings.Contains(c.Detail, detail) {
			t.Errorf("check %s detail %q, want it to contain %q", name, c.Detail, detail)
		}
		if name != "disk" && name != "memory" && c.Status != health.StatusOK {
			t.Errorf("check %s = %s", name, c.Status)
		}
	}
	if len(h.Checks) != len(want) {
		t.Errorf("%d checks, want %d: %v", len(h.Checks), len(want), h.Checks)
	}
	redisStep, _ := rep.Step("redis")
	if !strings.Contains(redisStep.Detail, "not configured") || !strings.Contains(redisStep.Detail, "in-process memory store") {
		t.Errorf("redis step detail %q", redisStep.Detail)
	}

	if err := d.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(d.ReadyPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("marker still there after Stop: %v", err)
	}
	if _, err := http.Get("http://" + d.HealthAddr() + "/health"); err == nil {
		t.Fatal("health server still answers after Stop")
	}
}

// Without TALOS_CHROMA_URL the memories live in the relational store: the
// boot opens them, /health counts them, including ones another process
// (`talos memory add`) wrote after the boot, and a damaged record degrades
// the daemon, named in the chroma step and check, without stopping it.
func TestMemoriesInTheRelationalStoreAreOpenedAndDamageIsNamed(t *testing.T) {
	cfg := newHome(t, nil)
	ctx := context.Background()
	path := filepath.Join(cfg.Home, "data", "talos.db")
	db, err := sqldb.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := ragsql.Open(ctx, db, ragsql.Config{Dimension: daemon.EmbeddedMemoryDimension})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]rag.Record, 3)
	for i := range recs {
		emb := make([]float32, daemon.EmbeddedMemoryDimension)
		emb[i] = 1
		recs[i] = rag.Record{ID: fmt.Sprint("m", i), Document: "memory", Embedding: emb}
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "UPDATE rag_records SET embedding = x'0000' WHERE id = 'm1'"); err != nil {
		t.Fatal(err)
	}
	d := start(t, cfg, fastOpts())
	step, _ := d.Report().Step("chroma")
	if step.Outcome != boot.Degraded || !strings.Contains(step.Detail, "collection talos_memory: 3 records, 1 damaged") || !strings.Contains(step.Error, `"m1"`) {
		t.Fatalf("chroma step %+v", step)
	}
	if names := stepNames(d.Report()); strings.Index(names, "postgres") > strings.Index(names, "chroma") {
		t.Fatalf("the chroma step runs before the relational store is open: %s", names)
	}
	_, h := getHealth(t, d)
	c := h.Checks["chroma"]
	if c.Status != health.StatusWarn || !strings.Contains(c.Detail, path+", collection talos_memory: 3 records") ||
		!strings.Contains(c.Detail, `1 damaged memories skipped: "m1"`) || h.Status != health.Degraded {
		t.Fatalf("chroma check %s %+v", h.Status, c)
	}
	if err := s.Upsert(ctx, []rag.Record{{ID: "later", Document: "memory", Embedding: recs[0].Embedding}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, h = getHealth(t, d)
		if strings.Contains(h.Checks["chroma"].Detail, "collection talos_memory: 4 records") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a record written after the boot is not counted: %+v", h.Checks["chroma"])
		}
	}
}

// Memories in the relational store that cannot be opened (a collection of
// another embedding dimension) degrade the daemon, with the reason in the
// chroma step and check; they do not stop the boot.
func TestMemoriesThatDoNotOpenDegrade(t *testing.T) {
	cfg := newHome(t, nil)
	ctx := context.Background()
	db, err := sqldb.Open(ctx, filepath.Join(cfg.Home, "data", "talos.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ragsql.Open(ctx, db, ragsql.Config{Dimension: 512}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	d := start(t, cfg, fastOpts())
	step, _ := d.Report().Step("chroma")
	if step.Outcome != boot.Degraded || !strings.Contains(step.Error, "512-dimensional") {
		t.Fatalf("chroma step %+v", step)
	}
	_, h := getHealth(t, d)
	if c := h.Checks["chroma"]; c.Status != health.StatusFail || !strings.Contains(c.Detail, "cannot be opened") || !strings.Contains(c.Detail, "512-dimensional") || h.Status != health.Degraded {
		t.Fatalf("chroma check %s %+v", h.Status, c)
	}
}

func stepNames(r boot.Report) string {
	var names []string
	for _, s := range r.Steps {
		names = append(names, s.Name)
	}
	return strings.Join(names, " ")
}

// With TALOS_MEMORY_STORE=chromem and without TALOS_CHROMA_URL the boot
// checks the embedded chromem-go store for real and /health counts its
// records, including ones another process (`talos memory add`) wrote after
// the boot; the relational store's directory must be writable.
func TestEmbeddedStoresAreChecked(t *testing.T) {
	cfg := newHome(t, map[string]string{"TALOS_MEMORY_STORE": "chromem"})
	dir := filepath.Join(cfg.Home, "data", "chromadb")
	s, err := chromem.Open(chromem.Config{Path: dir, Dimension: daemon.EmbeddedChromemDimension})
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]rag.Record, 3)
	for i := range recs {
		emb := make([]float32, daemon.EmbeddedChromemDimension)
		emb[i] = 1
		recs[i] = rag.Record{ID: fmt.Sprint("m", i), Document: "memory", Embedding: emb}
	}
	if err := s.Upsert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	d := start(t, cfg, fastOpts())
	step, _ := d.Report().Step("chroma")
	if step.Outcome != boot.OK || !strings.Contains(step.Detail, "collection talos_memory: 3 records") {
		t.Fatalf("chroma step %+v", step)
	}
	_, h := getHealth(t, d)
	if c := h.Checks["chroma"]; c.Status != health.StatusOK || !strings.Contains(c.Detail, dir+", collection talos_memory: 3 records") {
		t.Fatalf("chroma check %+v", c)
	}
	if err := s.Upsert(context.Background(), []rag.Record{{ID: "later", Document: "memory", Embedding: recs[0].Embedding}}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, h = getHealth(t, d)
		if strings.Contains(h.Checks["chroma"].Detail, "collection talos_memory: 4 records") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a record written after the boot is not counted: %+v", h.Checks["chroma"])
		}
	}

	// A data directory that is not writable fails the relational check
	// (not critical: degraded).
	if os.Geteuid() != 0 {
		data := filepath.Join(cfg.Home, "data")
		if err := os.Chmod(data, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chmod(data, 0o700) })
		_, h = getHealth(t, d)
		if c := h.Checks["postgres"]; c.Status != health.StatusFail || !strings.Contains(c.Detail, "not writable") || h.Status != health.Degraded {
			t.Fatalf("postgres check with read-only data dir: %s %+v", h.Status, c)
		}
	}
}

// An embedded store that cannot be opened (here: created with another
// embedding dimension) degrades the boot and fails the chroma check with
// the reason, without stopping the daemon.
func TestEmbeddedStoreThatDoesNotOpenDegrades(t *testing.T) {
	cfg := newHome(t, map[string]string{"TALOS_MEMORY_STORE": "chromem"})
	dir := filepath.Join(cfg.Home, "data", "chromadb")
	if _, err := chromem.Open(chromem.Config{Path: dir, Dimension: 512}); err != nil {
		t.Fatal(err)
	}
	d := start(t, cfg, fastOpts())
	step, _ := d.Report().Step("chroma")
	if step.Outcome != boot.Degraded || !strings.Contains(step.Error, "dimension") {
		t.Fatalf("chroma step %+v", step)
	}
	_, h := getHealth(t, d)
	if c := h.Checks["chroma"]; c.Status != health.StatusFail || !strings.Contains(c.Detail, "not usable") || !strings.Contains(c.Detail, "dimension") {
		t.Fatalf("chroma check %+v", c)
	}
	if h.Status != health.Degraded {
		t.Fatalf("status %s", h.Status)
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	cfg := newHome(t, nil)
	d, err := daemon.New(cfg, fastOpts())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done, stopped := make(chan error, 1), make(chan struct{})
	go func() { done <- d.Run(ctx); close(stopped) }()
	// A failure below leaves no daemon writing into the home.
	t.Cleanup(func() { cancel(); <-stopped })
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := os.Stat(d.ReadyPath()); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no marker within 10 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := os.Stat(d.ReadyPath()); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("marker still there: %v", err)
	}
}

func TestMissingTreeIsFatalT005(t *testing.T) {
	cfg := loadConfig(t, t.TempDir(), nil) // no layout.Create
	d, _ := daemon.New(cfg, fastOpts())
	err := d.Start(context.Background())
	if !errors.Is(err, talos.ErrDirPermissions) || !strings.Contains(err.Error(), `"directories"`) {
		t.Fatalf("err = %v", err)
	}
	r, rerr := boot.ReadReady(d.ReadyPath())
	if rerr != nil || r.Status != boot.StatusFailed || r.FailedStep != "directories" {
		t.Fatalf("failure marker %+v, %v", r, rerr)
	}
	if d.HealthAddr() != "" {
		t.Fatal("health server started after a fatal step")
	}
}

func TestConfiguredRedisDownIsFatalT001AfterRetries(t *testing.T) {
	port := svcchecktest.FreePort(t)
	cfg := newHome(t, map[string]string{"TALOS_REDIS_URL": fmt.Sprintf("redis://127.0.0.1:%d/0", port)})
	opts := fastOpts()
	opts.Attempts = 3
	d, _ := daemon.New(cfg, opts)
	err := d.Start(context.Background())
	if !errors.Is(err, talos.ErrRedis) || !strings.Contains(err.Error(), "after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
	rep := d.Report()
	if rep.FailedStep != "redis" {
		t.Fatalf("failed step %q", rep.FailedStep)
	}
	for _, s := range rep.Steps[len(rep.Steps)-3:] {
		if s.Outcome != boot.Skipped {
			t.Fatalf("step %s after the fatal one: %s", s.Name, s.Outcome)
		}
	}
}

// The issue's "stopping Redis under it turns it degraded, restarting Redis
// turns it healthy again", on a private redis-server (never the shared one).
func TestRedisGoesDownAndComesBack(t *testing.T) {
	srv := svcchecktest.StartRedis(t)
	cfg := newHome(t, map[string]string{"TALOS_REDIS_URL": srv.URL()})
	d := start(t, cfg, fastOpts())
	step, _ := d.Report().Step("redis")
	if step.Outcome != boot.Degraded || !strings.Contains(step.Detail, "PONG from "+srv.Addr()) || !strings.Contains(step.Error, "noeviction") {
		// redis-server's default policy is noeviction, not the configured
		// allkeys-lru: boot warns and goes on.
		t.Fatalf("redis step %+v", step)
	}
	expect := func(want health.Status, redis health.CheckStatus) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			code, h := getHealth(t, d)
			if h.Status == want && h.Checks["redis"].Status == redis {
				if code != 200 {
					t.Fatalf("HTTP %d for %s", code, want)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("status %s (redis %s: %s), want %s (redis %s)", h.Status, h.Checks["redis"].Status, h.Checks["redis"].Detail, want, redis)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	// /health agrees with the boot: the wrong policy degrades, with the
	// boot step's detail and message.
	expect(health.Degraded, health.StatusWarn)
	_, h := getHealth(t, d)
	if got := h.Checks["redis"].Detail; !strings.Contains(got, step.Detail) || !strings.Contains(got, step.Error) {
		t.Fatalf("redis check detail %q, want the boot's %q and %q", got, step.Detail, step.Error)
	}
	// Fixing the policy on the live server turns it healthy without a
	// restart of the daemon.
	srv.Args = []string{"--maxmemory-policy", "allkeys-lru"}
	c, err := svccheck.NewRedis(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.ApplyMemory(context.Background(), "", "allkeys-lru"); err != nil {
		t.Fatal(err)
	}
	expect(health.Healthy, health.StatusOK)
	srv.Stop()
	expect(health.Degraded, health.StatusFail)
	srv.Start()
	expect(health.Healthy, health.StatusOK)
}

func TestSocketProxyStep(t *testing.T) {
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Api-Version", "1.41")
			fmt.Fprint(w, "OK")
			return
		}
		w.WriteHeader(http.StatusForbidden)
	}))
	defer proxy.Close()
	cfg := newHome(t, map[string]string{"SOCKET_PROXY_URL": proxy.URL})
	d := start(t, cfg, fastOpts())
	s, _ := d.Report().Step("socket-proxy")
	if s.Outcome != boot.OK || !strings.Contains(s.Detail, "answers /_ping") {
		t.Fatalf("socket-proxy step %+v", s)
	}
	_, h := getHealth(t, d)
	if h.Checks["socket-proxy"].Status != health.StatusOK || !strings.Contains(h.Checks["socket-proxy"].Detail, "API 1.41") {
		t.Fatalf("socket-proxy check %+v", h.Checks["socket-proxy"])
	}

	cfg2 := newHome(t, nil)
	d2 := start(t, cfg2, fastOpts())
	s2, _ := d2.Report().Step("socket-proxy")
	if s2.Outcome != boot.Skipped || !strings.Contains(s2.Detail, "not configured") {
		t.Fatalf("unconfigured proxy step %+v", s2)
	}
}

func TestOllamaDownOnlyDegrades(t *testing.T) {
	port := svcchecktest.FreePort(t)
	cfg := newHome(t, map[string]string{"TALOS_OLLAMA_URL": fmt.Sprintf("http://127.0.0.1:%d", port)})
	d := start(t, cfg, fastOpts())
	s, _ := d.Report().Step("ollama")
	if s.Outcome != boot.Degraded || !d.Report().Degraded {
		t.Fatalf("ollama step %+v", s)
	}
	r, _ := boot.ReadReady(d.ReadyPath())
	if r.Status != boot.StatusDegraded {
		t.Fatalf("marker status %s, want degraded", r.Status)
	}
	code, h := getHealth(t, d)
	if code != 200 || h.Status != health.Degraded || h.Checks["ollama"].Status != health.StatusFail {
		t.Fatalf("/health %d %s %+v", code, h.Status, h.Checks["ollama"])
	}
}

func TestHealthPortTakenIsFatal(t *testing.T) {
	first := start(t, newHome(t, nil), fastOpts())
	opts := fastOpts()
	opts.HealthAddr = first.HealthAddr()
	d, _ := daemon.New(newHome(t, nil), opts)
	err := d.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), `"health-server"`) || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("err = %v", err)
	}
}

// Against the harness's real services: each is checked for real.
func TestHarnessServices(t *testing.T) {
	env := map[string]string{
		"TALOS_REDIS_URL":    testenv.RedisURL(t),
		"TALOS_POSTGRES_URL": testenv.PostgresURL(t),
		"TALOS_CHROMA_URL":   testenv.ChromaURL(t),
		"TALOS_DOCKER_HOST":  testenv.DockerHost(t),
		// The harness's PostgreSQL trusts loopback; config wants a password
		// whenever PostgreSQL is configured.
		"POSTGRES_PASSWORD": testPass,
	}
	cfg := newHome(t, env)
	d := start(t, cfg, fastOpts())
	for _, name := range []string{"redis", "chroma", "postgres", "docker"} {
		s, _ := d.Report().Step(name)
		if s.Outcome == boot.Failed || strings.Contains(s.Detail, "not configured") {
			t.Fatalf("step %s: %+v", name, s)
		}
		t.Logf("boot %-8s %-8s %6.1f ms  %s %s", name, s.Outcome, float64(s.Duration.Microseconds())/1000, s.Detail, s.Error)
	}
	_, h := getHealth(t, d)
	for _, name := range []string{"redis", "chroma", "postgres", "docker"} {
		c := h.Checks[name]
		if c.Status != health.StatusOK || strings.Contains(c.Detail, "embedded") {
			t.Fatalf("check %s = %+v", name, c)
		}
		if name == "postgres" && (!strings.HasPrefix(c.Detail, "PostgreSQL at postgres://") || !strings.Contains(c.Detail, "schema strikes v2, quarantine v2") || strings.Contains(c.Detail, testPass)) {
			t.Errorf("postgres check detail %q: want the server without its password and the schema version", c.Detail)
		}
		t.Logf("health %-8s %s %6.2f ms  %s", name, c.Status, c.LatencyMS, c.Detail)
	}
}

// With PostgreSQL configured and no Chroma server, the memories live in
// PostgreSQL: the chroma step opens them there and /health counts them.
func TestMemoriesInPostgreSQL(t *testing.T) {
	dsn := sqldbtest.DSN(t, sqldb.Postgres)
	ctx := context.Background()
	db, err := sqldb.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := ragsql.Open(ctx, db, ragsql.Config{Dimension: daemon.EmbeddedMemoryDimension})
	if err != nil {
		t.Fatal(err)
	}
	emb := make([]float32, daemon.EmbeddedMemoryDimension)
	emb[0] = 1
	if err := s.Upsert(ctx, []rag.Record{{ID: "pg", Document: "memory", Embedding: emb}}); err != nil {
		t.Fatal(err)
	}
	cfg := newHome(t, map[string]string{"TALOS_POSTGRES_URL": dsn, "POSTGRES_PASSWORD": testPass})
	d := start(t, cfg, fastOpts())
	step, _ := d.Report().Step("chroma")
	if step.Outcome != boot.OK || !strings.Contains(step.Detail, "memories in PostgreSQL at postgres://") || !strings.Contains(step.Detail, "collection talos_memory: 1 records") {
		t.Fatalf("chroma step %+v", step)
	}
	_, h := getHealth(t, d)
	if c := h.Checks["chroma"]; c.Status != health.StatusOK || !strings.Contains(c.Detail, "collection talos_memory: 1 records") || strings.Contains(c.Detail, testPass) {
		t.Fatalf("chroma check %+v", c)
	}
}

func TestExtraStepsAndChecks(t *testing.T) {
	cfg := newHome(t, nil)
	opts := fastOpts()
	ran := false
	opts.ExtraSteps = []boot.Step{{Name: "genesis-skills", Run: func(ctx context.Context) (string, error) {
		ran = true
		return "0 activated, 0 quarantined", nil
	}}}
	opts.ExtraChecks = []health.Check{{Name: "gpu", Func: func(ctx context.Context) (string, error) {
		return "", health.Warnf("nvidia-smi not found")
	}}}
	d := start(t, cfg, opts)
	steps := d.Report().Steps
	if !ran || steps[len(steps)-3].Name != "genesis-skills" {
		t.Fatalf("extra step did not run before the health server: %+v", steps)
	}
	code, h := getHealth(t, d)
	if code != 200 || h.Status != health.Degraded || h.Checks["gpu"].Status != health.StatusWarn {
		t.Fatalf("/health %d %s %+v", code, h.Status, h.Checks["gpu"])
	}
	if d.Metrics() == nil || d.Checker() == nil {
		t.Fatal("Metrics or Checker nil after Start")
	}

	opts.ExtraChecks = []health.Check{{Name: "redis", Func: func(ctx context.Context) (string, error) { return "", nil }}}
	d2, _ := daemon.New(newHome(t, nil), opts)
	if err := d2.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "registered twice") {
		t.Fatalf("clashing check name: %v", err)
	}
}

// Every log line of the boot carries the boot's correlation ID (the
// caller's, when its context has one), and every health request gets its
// own, echoed in the response and on the request's log line.
func TestBootAndRequestsCarryCorrelationIDs(t *testing.T) {
	cfg := newHome(t, nil)
	var buf testenv.LockedBuffer
	opts := fastOpts()
	opts.Log = slog.New(tlog.WithCorrelation(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	d, err := daemon.New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	const bootID = "00112233aabbccdd"
	if err := d.Start(tlog.WithCorrelationID(context.Background(), bootID)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Stop(context.Background()) })
	if d.CorrelationID() != bootID {
		t.Fatalf("CorrelationID %q, want the caller's %q", d.CorrelationID(), bootID)
	}
	bootLines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	steps := 0
	for _, line := range bootLines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %s", line)
		}
		if m[tlog.CorrelationKey] != bootID || strings.Count(line, tlog.CorrelationKey) != 1 {
			t.Errorf("boot line without the boot's correlation ID (exactly once): %s", line)
		}
		if m["msg"] == "boot step done" {
			steps++
		}
	}
	// The first health evaluation runs beside the end of the boot and logs
	// with the boot's ID too, so "boot complete" need not be the last line.
	complete := slices.ContainsFunc(bootLines, func(l string) bool { return strings.Contains(l, `"msg":"boot complete"`) })
	if steps < len(d.Report().Steps)-1 || !complete {
		t.Fatalf("%d step lines for %d steps; boot complete logged: %v", steps, len(d.Report().Steps), complete)
	}

	// A request: its ID is echoed and on its log line, not the boot's.
	req, _ := http.NewRequest(http.MethodGet, "http://"+d.HealthAddr()+"/health", nil)
	const reqID = "feedfacecafebeef"
	req.Header.Set(tlog.CorrelationHeader, reqID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get(tlog.CorrelationHeader); got != reqID {
		t.Fatalf("response correlation ID %q, want %q", got, reqID)
	}
	resp, err = http.Get("http://" + d.HealthAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	minted := resp.Header.Get(tlog.CorrelationHeader)
	if !tlog.ValidCorrelationID(minted) || minted == bootID || minted == reqID {
		t.Fatalf("/metrics correlation ID %q", minted)
	}
	all := buf.String()
	for _, id := range []string{reqID, minted} {
		if !strings.Contains(all, `"path":"/`) || !strings.Contains(all, `"`+tlog.CorrelationKey+`":"`+id+`"`) {
			t.Errorf("no log line carries request ID %s:\n%s", id, all)
		}
	}
}

// A health check still running when Stop's time is out does not make the
// stop fail (talos run would exit 1): Stop returns within its time, nil,
// and logs that the check was left running.
func TestStopWithACheckStillRunning(t *testing.T) {
	var armed atomic.Bool
	release, stuck := make(chan struct{}), make(chan struct{}, 1)
	opts := fastOpts()
	var buf testenv.LockedBuffer
	opts.Log = slog.New(slog.NewJSONHandler(&buf, nil))
	opts.ExtraChecks = []health.Check{{Name: "stuck", Func: func(ctx context.Context) (string, error) {
		if armed.Load() {
			select {
			case stuck <- struct{}{}:
			default:
			}
			<-release // ignores ctx, as a blocking file system call would
		}
		return "ok", nil
	}}}
	d, err := daemon.New(newHome(t, nil), opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer close(release)
	armed.Store(true)
	// An evaluation the daemon's refresh loop began before the check was
	// armed may still be in flight: Refresh joins it and gets its "ok"
	// (or gives up on it while it is slow elsewhere). Every evaluation that
	// begins from now on sticks: refresh until one is stuck in the check.
	for i := 0; ; i++ {
		rctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		_, err := d.Checker().Refresh(rctx)
		cancel()
		if err != nil && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Refresh: %v", err)
		}
		select {
		case <-stuck:
		default:
			if i == 100 {
				t.Fatal("no evaluation reached the stuck check")
			}
			continue
		}
		break
	}
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	began := time.Now()
	if err := d.Stop(sctx); err != nil {
		t.Fatalf("Stop with a check still running: %v, want nil (the stop is clean)", err)
	}
	if took := time.Since(began); took > 2*time.Second {
		t.Errorf("Stop took %v, past its context", took)
	}
	if !strings.Contains(buf.String(), "a health check was still running") {
		t.Errorf("the check left running is not logged:\n%s", buf.String())
	}
}
