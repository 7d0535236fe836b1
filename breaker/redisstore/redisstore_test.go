package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/breakertest"
	"github.com/talos-ironclad/talos/breaker/redisstore"
	"github.com/talos-ironclad/talos/internal/testenv"
)

func TestConformanceMiniredis(t *testing.T) {
	breakertest.Run(t, func(t *testing.T) breaker.Store {
		mr := miniredis.RunT(t)
		rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
		t.Cleanup(func() { _ = rdb.Close() })
		s, err := redisstore.New(redisstore.Config{}, rdb)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// The same suite against the real Redis of the harness. Each run uses a
// prefix of its own and deletes its keys afterwards (the Redis is shared).
func TestConformanceRealRedis(t *testing.T) {
	url := testenv.RedisURL(t)
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis at %s: %v", url, err)
	}
	prefix := fmt.Sprintf("talos-test:breaker:%d:", time.Now().UnixNano())
	t.Cleanup(func() {
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		for iter.Next(ctx) {
			rdb.Del(ctx, iter.Val())
		}
	})
	breakertest.Run(t, func(t *testing.T) breaker.Store {
		s, err := redisstore.New(redisstore.Config{Prefix: prefix}, rdb)
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
	// Keys expire on their own.
	s, _ := redisstore.New(redisstore.Config{Prefix: prefix}, rdb)
	if _, err := s.AddFailure(ctx, "ttl", time.Now(), 300*time.Second); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, prefix+"ttl:failures").Val(); ttl <= 0 || ttl > 300*time.Second {
		t.Fatalf("failures key TTL = %s, want (0, 300s]", ttl)
	}
}

func TestErrors(t *testing.T) {
	if _, err := redisstore.New(redisstore.Config{}, nil); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("New(nil) = %v", err)
	}
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer rdb.Close()
	s, _ := redisstore.New(redisstore.Config{}, rdb)
	ctx := context.Background()
	mr.HSet("talos:breaker:bad:state", "state", "open", "until_us", "x", "step", "1", "updated_us", "1")
	if _, _, err := s.Load(ctx, "bad"); !errors.Is(err, talos.ErrRedis) {
		t.Fatalf("malformed record: %v", err)
	}
	mr.Close()
	if _, err := s.AddFailure(ctx, "x", time.Now(), time.Minute); !errors.Is(err, talos.ErrRedis) {
		t.Fatalf("Redis down: %v", err)
	}
}

func Example() {
	mr, _ := miniredis.Run()
	defer mr.Close()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store, _ := redisstore.New(redisstore.Config{}, rdb)

	b, _ := breaker.New(breaker.Config{Name: "gemini", FailureThreshold: 1}, store)
	t, _ := b.Allow()
	t.Done(errors.New("503"))

	// Another process (or this one after a restart) restores the trip.
	again, _ := breaker.New(breaker.Config{Name: "gemini"}, store)
	_ = again.Sync(context.Background())
	fmt.Println(again.State())
	// Output: open
}
