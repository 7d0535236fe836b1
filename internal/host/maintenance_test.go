package host_test

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/testenv"
)

func write(t *testing.T, path, content string, age time.Duration) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if age > 0 {
		old := time.Now().Add(-age)
		os.Chtimes(path, old, old)
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestLogCompressorKeepsTier1AndTheCurrentFiles(t *testing.T) {
	home := t.TempDir()
	logs := filepath.Join(home, "logs")
	big := strings.Repeat(`{"level":"INFO","msg":"a line that repeats"}`+"\n", 500)
	write(t, filepath.Join(logs, "tier1", "audit.000001.log"), big, 400*24*time.Hour)
	write(t, filepath.Join(logs, "tier1", "audit.log"), big, 0)
	write(t, filepath.Join(logs, "tier2", "ops.000001.log"), big, 0)
	write(t, filepath.Join(logs, "tier2", "ops.log"), big, 0)
	write(t, filepath.Join(logs, "tier2", "ops.000000.log.gz"), "old", 31*24*time.Hour)
	write(t, filepath.Join(logs, "tier3", "debug.000007.log"), big, 0)
	write(t, filepath.Join(logs, "tier3", "debug.000006.log.gz"), "recent", 12*time.Hour)

	lc := host.LogCompressor{Home: home, Retention: map[int]time.Duration{2: 30 * 24 * time.Hour, 3: 24 * time.Hour}}
	res, err := lc.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if res.Counters["files_compressed"] != 2 || res.Counters["files_deleted"] != 1 || res.Counters["bytes_saved"] <= 0 {
		t.Errorf("counters %v", res.Counters)
	}
	for _, p := range []string{"tier1/audit.000001.log", "tier1/audit.log", "tier2/ops.log", "tier2/ops.000001.log.gz", "tier3/debug.000007.log.gz", "tier3/debug.000006.log.gz"} {
		if !exists(filepath.Join(logs, p)) {
			t.Errorf("%s is gone", p)
		}
	}
	for _, p := range []string{"tier2/ops.000001.log", "tier2/ops.000000.log.gz", "tier3/debug.000007.log"} {
		if exists(filepath.Join(logs, p)) {
			t.Errorf("%s is still there", p)
		}
	}
	f, _ := os.Open(filepath.Join(logs, "tier2", "ops.000001.log.gz"))
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(zr); string(b) != big {
		t.Error("the compressed file does not hold the log")
	}
	fi, _ := os.Stat(filepath.Join(logs, "tier2", "ops.000001.log.gz"))
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("compressed mode %v, want the log's 0640", fi.Mode().Perm())
	}
	// A second pass has nothing to do and says so.
	if res, _ := lc.Run(context.Background()); res.Skipped == "" {
		t.Errorf("second pass: %+v", res)
	}
}

// runCycle runs one maintenance cycle of cfg with deps now and returns its
// report.
func runCycle(t *testing.T, cfg *config.Config, deps host.MaintenanceDeps) *dream.Report {
	t.Helper()
	m, err := host.NewMaintenance(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	rep, err := m.RunNow(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func loadConfig(t *testing.T, env map[string]string) *config.Config {
	t.Helper()
	vars := map[string]string{"BASIC_AUTH_PASS": "Str0ng!Passw0rd#2026"}
	for k, v := range env {
		vars[k] = v
	}
	cfg, err := config.Load(config.LoadOptions{Home: t.TempDir(), SkipFiles: true, LookupEnv: func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestMaintenanceRunsItsPhasesNowAndReports(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"TALOS_DREAM_SCHEDULE": "30 3 * * *", "TALOS_DREAM_TIMEZONE": "UTC"})
	m, err := host.NewMaintenance(cfg, host.MaintenanceDeps{Health: func(context.Context) (int, int, string, error) {
		return 7, 0, "", nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if got := strings.Join(m.Phases(), ","); got != "redis_flush,vector_prune,memory_consolidate,session_summarize,log_compress,zombie_hunt,strike_expiry,skills_verify,backup,health_report" {
		t.Errorf("phases %s", got)
	}
	if next := m.NextWindow(time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)); !next.Equal(time.Date(2026, 12, 8, 3, 30, 0, 0, time.UTC)) {
		t.Errorf("next window %v", next)
	}
	rep, err := m.RunNow(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	sum := rep.Summary()
	for _, want := range []string{"redis_flush", "Redis is not configured", "log_compress", "zombie_hunt", "no Docker engine is configured", "skills_verify", "audit_entries_verified", "health_report", "checks_ok"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	st, err := m.State(time.Now())
	if err != nil || st.Last == nil || st.Last.ID != rep.ID {
		t.Errorf("State = %+v, %v", st, err)
	}
}

func TestHealthReportFailsOnUnhealthyChecks(t *testing.T) {
	cfg := loadConfig(t, nil)
	rep := runCycle(t, cfg, host.MaintenanceDeps{Health: func(context.Context) (int, int, string, error) {
		return 5, 2, "chroma: connection refused; disk: 97% used", nil
	}})
	if !strings.Contains(rep.Summary(), "2 checks are not ok: chroma: connection refused") {
		t.Errorf("summary:\n%s", rep.Summary())
	}
}

// With the harness's Redis, the flush deletes disposable keys and keeps the
// breaker's.
func TestMaintenanceFlushesOnlyDisposableRedisKeys(t *testing.T) {
	// A database of its own: the flush deletes every disposable key in it,
	// and other packages' tests use the harness's database 0 at the same time.
	url := testenv.RedisURL(t)
	url = url[:strings.LastIndex(url, "/")] + "/13"
	cfg := loadConfig(t, map[string]string{"TALOS_REDIS_URL": url})
	opt, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	suffix := time.Now().Format("150405.000000")
	cache, breaker := "talos:cache:host-test:"+suffix, "talos:breaker:host-test:"+suffix
	rdb.Set(ctx, cache, "x", 0)
	rdb.Set(ctx, breaker, "open", 0)
	defer rdb.Del(ctx, cache, breaker)
	m, err := host.NewMaintenance(cfg, host.MaintenanceDeps{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := m.RunNow(ctx, "test"); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, cache).Result(); n != 0 {
		t.Error("the disposable cache key survived")
	}
	if n, _ := rdb.Exists(ctx, breaker).Result(); n != 1 {
		t.Error("the breaker's key was deleted")
	}
}

// On the harness's Docker engine the hunt runs for real; it removes only
// old Talos-labelled containers, so here it finds nothing to remove and
// does not fail.
func TestZombieHuntPhaseOnTheRealEngine(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"TALOS_DOCKER_HOST": testenv.DockerHost(t)})
	rep := runCycle(t, cfg, host.MaintenanceDeps{})
	for _, p := range rep.Phases {
		if p.Name == "zombie_hunt" && (p.Status == "failed" || p.Status == "timed_out") {
			t.Fatalf("zombie_hunt %s: %s", p.Status, p.Error)
		}
	}
}

// Over 90 % of CHROMADB_MAX_VECTORS, the nightly prune archives and deletes
// the lowest-scoring memories down to 80 %, never a permanent one.
func TestVectorPrunePhase(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"CHROMADB_MAX_VECTORS": "10000"})
	ctx := context.Background()
	mem, err := host.OpenMemory(ctx, cfg, host.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-60 * 24 * time.Hour)
	for i := 0; i < 9500; i += 500 {
		var recs []rag.Record
		for j := i; j < i+500; j++ {
			p := rag.PriorityAuto
			if j%100 == 0 {
				p = rag.PriorityPermanent
			}
			md := rag.Memory{Priority: p, Source: rag.SourceUser, CreatedAt: old}.Metadata()
			recs = append(recs, rag.Record{ID: fmt.Sprint("m", j), Document: fmt.Sprint("note ", j), Embedding: ragtest.Unit(384, j, j+1, 0.2), Metadata: md})
		}
		if err := mem.Store.Upsert(ctx, recs); err != nil {
			t.Fatal(err)
		}
	}
	mem.Close()
	rep := runCycle(t, cfg, host.MaintenanceDeps{})
	var vp dream.PhaseReport
	for _, p := range rep.Phases {
		if p.Name == "vector_prune" {
			vp = p
		}
	}
	if vp.Status != dream.StatusOK || vp.Counters["memories_pruned"] != 1500 {
		t.Fatalf("vector_prune %+v", vp)
	}
	mem, err = host.OpenMemory(ctx, cfg, host.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	if n, _ := mem.Store.Count(ctx); n != 8000 {
		t.Errorf("%d memories after the prune, want 8000", n)
	}
	f := rag.Eq("priority", "permanent")
	if got, _ := mem.Store.List(ctx, rag.ListOptions{Where: &f}); len(got) != 95 {
		t.Errorf("%d permanent memories left, want all 95", len(got))
	}
	if _, err := os.Stat(filepath.Join(cfg.Home, host.MemoryArchiveFile)); err != nil {
		t.Errorf("no archive: %v", err)
	}
}

// With the daemon's store handed over (MaintenanceDeps.Memory), the memory
// phases change that store, not a second copy of it: an embedded chromem
// index, which lives in the daemon's memory, sees a night's merge at once
// instead of after a restart, and the phases leave the store open.
func TestMemoryPhasesWorkOnTheDaemonsStore(t *testing.T) {
	cfg := loadConfig(t, map[string]string{"TALOS_MEMORY_STORE": "chromem"})
	ctx := context.Background()
	mem, err := host.OpenMemory(ctx, cfg, host.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer mem.Close()
	fresh := rag.Memory{Priority: rag.PriorityNormal, Source: rag.SourceUser, Trusted: true, CreatedAt: time.Now().Add(-time.Hour)}
	var recs []rag.Record
	for _, id := range []string{"a", "b", "c"} { // three copies of one note
		recs = append(recs, rag.Record{ID: id, Document: "the boiler is serviced every October", Embedding: ragtest.Unit(384, 0, 1, 0.2), Metadata: fresh.Metadata()})
	}
	recs = append(recs, rag.Record{ID: "d", Document: "the car is due for its inspection in May", Embedding: ragtest.Unit(384, 5, 6, 0.2), Metadata: fresh.Metadata()})
	if err := mem.Store.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	rep := runCycle(t, cfg, host.MaintenanceDeps{Memory: func() *host.Memory { return mem }})
	if p := phaseOf(rep, host.PhaseConsolidate); p.Status != dream.StatusOK || p.Counters["memories_merged"] != 2 {
		t.Fatalf("memory_consolidate %+v, want the two repeats merged", p)
	}
	n, err := mem.Store.Count(ctx)
	if err != nil {
		t.Fatalf("the daemon's store after the cycle: %v", err)
	}
	if n != 2 {
		t.Errorf("the daemon's open store counts %d memories after the merge, want 2", n)
	}
}
