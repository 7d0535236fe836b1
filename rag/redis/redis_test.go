package redis_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	goredis "github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
	ragredis "github.com/talos-ironclad/talos/rag/redis"
)

func TestConformanceMiniredis(t *testing.T) {
	var mr *miniredis.Miniredis
	ragtest.RunHistory(t, ragtest.HistoryHarness{
		New: func(t *testing.T, cfg rag.HistoryConfig) rag.History {
			mr = miniredis.RunT(t)
			rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr()})
			t.Cleanup(func() { _ = rdb.Close() })
			h, err := ragredis.New(cfg, rdb)
			if err != nil {
				t.Fatal(err)
			}
			return h
		},
		Advance: func(t *testing.T, d time.Duration) { mr.FastForward(d) },
	})
}

// TestConformanceRealRedis runs the suite on the harness's Redis, each
// subtest in its own database-free key space (a unique session prefix is not
// needed: sessions are cleared first). Expiry is checked through PTTL.
func TestConformanceRealRedis(t *testing.T) {
	url := testenv.RedisURL(t)
	opts, err := goredis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := goredis.NewClient(opts)
	defer rdb.Close()
	ctx := context.Background()
	clear := func() {
		keys, _ := rdb.Keys(ctx, ragredis.KeyPrefix+"*").Result()
		for _, k := range keys {
			if k == ragredis.KeyPrefix+"s" || k == ragredis.KeyPrefix+"s1" || k == ragredis.KeyPrefix+"a" || k == ragredis.KeyPrefix+"b" || k == ragredis.KeyPrefix+"other" {
				rdb.Del(ctx, k)
			}
		}
	}
	ragtest.RunHistory(t, ragtest.HistoryHarness{
		New: func(t *testing.T, cfg rag.HistoryConfig) rag.History {
			clear()
			h, err := ragredis.New(cfg, rdb)
			if err != nil {
				t.Fatal(err)
			}
			return h
		},
	})
	h, _ := ragredis.New(rag.HistoryConfig{TTL: 90 * time.Second}, rdb)
	session := fmt.Sprintf("ttl-%d", time.Now().UnixNano())
	if err := h.Append(ctx, session, rag.Message{Role: "user", Content: "x"}); err != nil {
		t.Fatal(err)
	}
	defer h.Clear(ctx, session)
	ttl, err := rdb.PTTL(ctx, ragredis.KeyPrefix+session).Result()
	if err != nil || ttl <= 85*time.Second || ttl > 90*time.Second {
		t.Fatalf("PTTL = %v, %v; want about 90 s", ttl, err)
	}
	clear()
}

func TestRedisDown(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := goredis.NewClient(&goredis.Options{Addr: mr.Addr(), MaxRetries: -1})
	defer rdb.Close()
	h, _ := ragredis.New(rag.HistoryConfig{}, rdb)
	mr.Close()
	if err := h.Append(context.Background(), "s", rag.Message{Content: "x"}); err == nil {
		t.Fatal("append with Redis down must fail")
	}
}
