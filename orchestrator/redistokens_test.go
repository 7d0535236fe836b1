package orchestrator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/orchestrator"
)

func TestRedisTokensOnTheRealRedis(t *testing.T) {
	url := testenv.RedisURL(t)
	url = url[:strings.LastIndex(url, "/")] + "/14"
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	model := "test-model-" + time.Now().Format("150405.000000")
	rt := orchestrator.RedisTokens{RDB: rdb}
	mem := orchestrator.NewTokenCounter()
	tee := orchestrator.Tee{mem, rt}
	for i := 0; i < 3; i++ {
		if err := tee.Count(ctx, model, llm.Usage{PromptTokens: 10, CompletionTokens: 5}); err != nil {
			t.Fatal(err)
		}
	}
	day := time.Now().UTC().Format(time.DateOnly)
	u, err := rt.Day(ctx, model, day)
	if err != nil || u.PromptTokens != 30 || u.CompletionTokens != 15 {
		t.Fatalf("Day = %+v, %v", u, err)
	}
	ttl := rdb.TTL(ctx, "talos:tokens:"+model+":"+day+":prompt").Val()
	if ttl <= 6*24*time.Hour || ttl > orchestrator.TokenTTL {
		t.Errorf("TTL %v, want about 7 days", ttl)
	}
	if u, _ := rt.Day(ctx, model, "2001-01-01"); u.Total() != 0 {
		t.Errorf("a day without counts: %+v", u)
	}
	if err := rt.Count(ctx, model, llm.Usage{PromptTokens: -1}); err == nil {
		t.Error("a negative count was accepted")
	}
	rdb.Del(ctx, "talos:tokens:"+model+":"+day+":prompt", "talos:tokens:"+model+":"+day+":completion")
}
