package redisphase_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/dream/dreamtest"
	"github.com/talos-ironclad/talos/dream/redisphase"
	"github.com/talos-ironclad/talos/internal/testenv"
)

// ownerKeys are keys every Talos owner keeps in Redis, by the owner's
// prefix; none may ever be deleted by the clean-up.
func ownerKeys(tag string) []string {
	return []string{
		"talos:breaker:" + tag + ":gemini",   // breaker/redisstore
		"talos:history:" + tag + ":session1", // rag/redis chat history
		"talos:session:" + tag,
		"talos:lease:" + tag + ":vram",
		"talos:vram:" + tag + ":resident",
		"talos:lockdown:" + tag,
		"talos:config:" + tag,
		"talos:skill:registry",
		"talos:system:version",
		"talos:vector:schema",
		"talos:audit:" + tag,
	}
}

func seed(t *testing.T, rdb redis.UniversalClient, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if err := rdb.Set(t.Context(), k, "v", time.Hour).Err(); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(t *testing.T, rdb redis.UniversalClient, k string) bool {
	t.Helper()
	n, err := rdb.Exists(t.Context(), k).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func TestCleanupDeletesOnlyDisposableMiniredis(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	keep := append(ownerKeys("x"), "app:unregistered", "talos-other")
	seed(t, rdb, keep...)
	var gone []string
	for i := range 2500 { // more than two batches
		gone = append(gone, fmt.Sprintf("talos:cache:%d", i))
	}
	gone = append(gone, "talos:tmp:a", "talos:tmp:[x]*?")
	seed(t, rdb, gone...)
	// "talos:" covers every owner's prefix: protection wins.
	c, err := redisphase.New(redisphase.Config{Disposable: []string{"talos:"}, ScanCount: 100, BatchSize: 1000}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keep {
		if !exists(t, rdb, k) {
			t.Errorf("kept key %s was deleted", k)
		}
	}
	for _, k := range gone {
		if exists(t, rdb, k) {
			t.Errorf("disposable key %s survived", k)
		}
	}
	if res.Counters["keys_deleted"] != int64(len(gone)) || res.Counters["keys_protected"] != int64(len(ownerKeys("x"))) {
		t.Errorf("counters = %v, want %d deleted and %d protected", res.Counters, len(gone), len(ownerKeys("x")))
	}
	// A second run finds only protected keys and deletes nothing.
	res, err = c.Run(t.Context())
	if err != nil || res.Counters["keys_deleted"] != 0 || res.Skipped != "" {
		t.Errorf("second run = %+v, %v", res, err)
	}
}

func TestCleanupGlobCharactersAreLiteral(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	seed(t, rdb, "cache*:1", "cache*:2", "cacheX:1", "cache:1")
	c, err := redisphase.New(redisphase.Config{Disposable: []string{"cache*:"}}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if exists(t, rdb, "cache*:1") || exists(t, rdb, "cache*:2") || !exists(t, rdb, "cacheX:1") || !exists(t, rdb, "cache:1") {
		t.Errorf("a * in a prefix was treated as a wildcard: %v", mr.Keys())
	}
}

func TestNewRefusesBadPrefixes(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	_, err := redisphase.New(redisphase.Config{Disposable: []string{"", "talos:breaker:tmp:"}, Protected: []string{""}, ScanCount: -1, BatchSize: -1}, rdb)
	if !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("err = %v", err)
	}
	for _, w := range []string{"disposable prefix is empty", `"talos:breaker:tmp:" lies inside the protected prefix "talos:breaker:"`, "protected prefix is empty", "ScanCount", "BatchSize"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q: %v", w, err)
		}
	}
	c, err := redisphase.New(redisphase.Config{}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(t.Context())
	if err != nil || !strings.Contains(res.Skipped, "no disposable prefix") {
		t.Errorf("run without prefixes = %+v, %v", res, err)
	}
	if err := c.AddDisposable("talos:audit:x"); err == nil {
		t.Error("AddDisposable under talos:audit: accepted")
	}
	if err := c.AddProtected("app:keep:"); err != nil || !slices.Contains(c.Protected(), "app:keep:") {
		t.Errorf("AddProtected = %v", err)
	}
}

// TestPhaseInACycle runs the clean-up as the cycle's redis_flush phase.
func TestPhaseInACycle(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	seed(t, rdb, "talos:cache:1", "talos:breaker:gemini")
	c, err := redisphase.New(redisphase.Config{Disposable: []string{"talos:cache:"}}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	s, err := dream.New(dream.Config{StateDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Register(c.Phase()); err != nil {
		t.Fatal(err)
	}
	rep, err := s.RunNow(t.Context(), "")
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Phases[0]; p.Name != dream.PhaseRedisFlush || p.Status != dream.StatusOK || p.Counters["keys_deleted"] != 1 {
		t.Errorf("phase = %+v", p)
	}
}

// TestCleanupRealRedis runs against the harness's Redis, which other tests
// share: every key here carries this run's tag, and the disposable prefixes
// are this run's own, so nothing of anyone else's can go.
func TestCleanupRealRedis(t *testing.T) {
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis: %v", err)
	}
	tag := fmt.Sprintf("dreamtest%d", time.Now().UnixNano())
	ns := "talos-test:" + tag + ":"
	keep := append(ownerKeys(tag), ns+"keep:1", ns+"keep:2", "talos:cache2:"+tag)
	var gone []string
	for i := range 1500 {
		gone = append(gone, fmt.Sprintf("%scache:%d", ns, i))
	}
	gone = append(gone, "talos:cache:"+tag+":a", "talos:cache:"+tag+":b")
	// The fixed spec keys may already exist on the shared server: only
	// create them if missing, and delete only what this test created.
	created := []string{}
	for _, k := range append(keep, gone...) {
		ok, err := rdb.SetNX(ctx, k, "v", time.Hour).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			created = append(created, k)
		}
	}
	t.Cleanup(func() { rdb.Del(context.Background(), created...) })

	c, err := redisphase.New(redisphase.Config{
		Disposable: []string{ns, "talos:cache:" + tag + ":", "talos:breaker:"}, // the last is refused...
	}, rdb)
	if err == nil || !strings.Contains(err.Error(), "talos:breaker:") {
		t.Fatalf("a disposable breaker prefix was accepted: %v", err)
	}
	c, err = redisphase.New(redisphase.Config{
		Disposable: []string{ns, "talos:cache:" + tag + ":"},
		Protected:  []string{ns + "keep:"},
		BatchSize:  500,
	}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keep {
		if !exists(t, rdb, k) {
			t.Errorf("kept key %s was deleted", k)
		}
	}
	for _, k := range gone {
		if exists(t, rdb, k) {
			t.Errorf("disposable key %s survived", k)
		}
	}
	if res.Counters["keys_deleted"] != int64(len(gone)) || res.Counters["keys_protected"] != 2 || res.Counters["used_memory_before"] <= 0 {
		t.Errorf("counters = %v", res.Counters)
	}
}

// cancelAfterUnlink cancels a context when the first SCAN after an UNLINK
// starts (the daemon shutting down in the middle of the clean-up, after a
// batch was deleted and checkpointed) and counts the SCANs that start from
// cursor 0.
type cancelAfterUnlink struct {
	cancel      context.CancelFunc
	mu          sync.Mutex
	unlinks     int
	cancelled   bool
	scansFrom0  int
	matchPrefix string
}

func (h *cancelAfterUnlink) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *cancelAfterUnlink) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *cancelAfterUnlink) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		args := cmd.Args()
		switch cmd.Name() {
		case "unlink":
			h.unlinks++
		case "scan":
			if h.unlinks > 0 && !h.cancelled {
				h.cancelled = true
				h.cancel()
			}
			if fmt.Sprint(args[1]) == "0" && strings.Contains(fmt.Sprint(args...), h.matchPrefix) {
				h.scansFrom0++
			}
		}
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}

// TestResumeFromCheckpointRealRedis interrupts the clean-up after its first
// batch and resumes it: the SCAN goes on from the saved cursor (real Redis
// cursors survive deletions; miniredis's do not, so this needs the real
// server).
func TestResumeFromCheckpointRealRedis(t *testing.T) {
	opt, err := redis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	ns := fmt.Sprintf("talos-test:dreamresume%d:", time.Now().UnixNano())
	var keys []string
	for i := range 1000 {
		keys = append(keys, fmt.Sprintf("%s%d", ns, i))
	}
	seed(t, rdb, keys...)
	t.Cleanup(func() { rdb.Del(context.Background(), keys...) })

	ctx, cancel := context.WithCancel(t.Context())
	hook := &cancelAfterUnlink{cancel: cancel, matchPrefix: ns}
	rdb.AddHook(hook)
	c, err := redisphase.New(redisphase.Config{Disposable: []string{ns}, ScanCount: 100, BatchSize: 100}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r, err := dreamtest.RunPhase(ctx, dir, c.Phase())
	if err != nil || r.Status != dream.StatusInterrupted {
		t.Fatalf("first run = %+v, %v", r, err)
	}
	left, _ := rdb.Exists(t.Context(), keys...).Result()
	if left == 0 || left == int64(len(keys)) {
		t.Fatalf("%d keys left after the interrupted run, want some deleted and some left", left)
	}
	r, err = dreamtest.RunPhase(t.Context(), dir, c.Phase())
	if err != nil || r.Status != dream.StatusOK {
		t.Fatalf("resumed run = %+v, %v", r, err)
	}
	if left, _ := rdb.Exists(t.Context(), keys...).Result(); left != 0 {
		t.Errorf("%d disposable keys left after the resumed run", left)
	}
	if r.Counters["keys_deleted"] != int64(len(keys)) {
		t.Errorf("keys_deleted = %d across both runs, want %d", r.Counters["keys_deleted"], len(keys))
	}
	if hook.scansFrom0 != 1 {
		t.Errorf("%d SCANs started from cursor 0, want 1: the resumed run must go on from the checkpoint", hook.scansFrom0)
	}
}
