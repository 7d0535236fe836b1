package orchestrator_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/orchestrator"
)

// tokensRedis connects to database 14 of the test Redis, which only these
// tests use.
func tokensRedis(t *testing.T) *redis.Client {
	t.Helper()
	url := testenv.RedisURL(t)
	url = url[:strings.LastIndex(url, "/")] + "/14"
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestRedisTokensOnTheRealRedis(t *testing.T) {
	testenv.AwayFromUTCMidnight(t, time.Minute)
	rdb := tokensRedis(t)
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

// Days reads each day's set of models. Counters written before those sets
// existed are indexed once, by a SCAN that the marker key then spares
// every later read.
func TestRedisTokensDaysReadsTheDaysModels(t *testing.T) {
	testenv.AwayFromUTCMidnight(t, time.Minute)
	rdb := tokensRedis(t)
	ctx := context.Background()
	rt := orchestrator.RedisTokens{RDB: rdb}
	stamp := time.Now().Format("150405.000000")
	model, legacy, late := "days-model:"+stamp, "days-legacy-"+stamp, "days-late-"+stamp
	day := time.Now().UTC().Format(time.DateOnly)
	key := func(m, kind string) string { return "talos:tokens:" + m + ":" + day + ":" + kind }
	t.Cleanup(func() {
		rdb.Del(ctx, key(model, "prompt"), key(model, "completion"), key(legacy, "prompt"), key(late, "prompt"))
		rdb.SRem(ctx, "talos:tokens:models:"+day, model, legacy, late)
	})
	// A counter from before the sets, with nothing in its day's set.
	if err := rdb.Set(ctx, key(legacy, "prompt"), 7, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, "talos:tokens:indexed", "talos:tokens:indexcursor")
	if err := rt.Count(ctx, model, llm.Usage{PromptTokens: 10, CompletionTokens: 5}); err != nil {
		t.Fatal(err)
	}
	got, err := rt.Days(ctx, []string{day, day, "2001-01-01"})
	if err != nil {
		t.Fatal(err)
	}
	if u := got[day][model]; u.PromptTokens != 10 || u.CompletionTokens != 5 {
		t.Errorf("%s counted once on a day asked for twice: %+v, want 10/5", model, u)
	}
	if u := got[day][legacy]; u.PromptTokens != 7 || u.CompletionTokens != 0 {
		t.Errorf("the counter from before the sets: %+v, want 7/0", u)
	}
	if _, ok := got["2001-01-01"]; ok {
		t.Error("a day without counters is in the result")
	}
	if ttl := rdb.TTL(ctx, "talos:tokens:indexed").Val(); ttl <= 59*time.Minute || ttl > time.Hour {
		t.Errorf("the indexed marker expires in %v, want in an hour", ttl)
	}
	if ttl := rdb.TTL(ctx, "talos:tokens:models:"+day).Val(); ttl <= 6*24*time.Hour {
		t.Errorf("the day's model set expires in %v, want about TokenTTL", ttl)
	}
	// Once indexed, a read takes the sets as they are: a counter that
	// bypassed Count is not found by walking the keyspace again.
	if err := rdb.Set(ctx, key(late, "prompt"), 3, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	got, err = rt.Days(ctx, []string{day})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := got[day][late]; ok {
		t.Error("Days walked the keyspace although the counters were indexed")
	}
	if got[day][model].Total() != 15 {
		t.Errorf("second read: %+v", got[day][model])
	}
}

// On a keyspace too big for one read, indexing goes on across reads: each
// spends a bounded number of SCAN calls and leaves the cursor for the
// next, until the pass is done and marked.
func TestRedisTokensIndexesAcrossReads(t *testing.T) {
	rdb := tokensRedis(t)
	ctx := context.Background()
	rt := orchestrator.RedisTokens{RDB: rdb}
	orchestrator.SetIndexScanSteps(t, 1)
	const day, n = "2001-02-03", 5000
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("talos:tokens:legacy-%d:%s:prompt", i, day))
	}
	t.Cleanup(func() {
		for len(keys) > 0 {
			b := keys[:min(len(keys), 1000)]
			keys = keys[len(b):]
			rdb.Del(ctx, b...)
		}
		rdb.Del(ctx, "talos:tokens:models:"+day, "talos:tokens:indexed", "talos:tokens:indexcursor")
	})
	if _, err := rdb.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, k := range keys {
			pl.Set(ctx, k, 1, time.Hour)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, "talos:tokens:models:"+day, "talos:tokens:indexed", "talos:tokens:indexcursor")
	got, err := rt.Days(ctx, []string{day})
	if err != nil {
		t.Fatal(err)
	}
	if len(got[day]) >= n || rdb.Exists(ctx, "talos:tokens:indexed").Val() != 0 || rdb.Exists(ctx, "talos:tokens:indexcursor").Val() != 1 {
		t.Fatalf("one SCAN step indexed %d of %d counters and marked the pass done: it must leave a cursor instead", len(got[day]), n)
	}
	reads := 1
	for rdb.Exists(ctx, "talos:tokens:indexed").Val() == 0 {
		if reads++; reads > 100 {
			t.Fatal("the indexing pass never finished")
		}
		if got, err = rt.Days(ctx, []string{day}); err != nil {
			t.Fatal(err)
		}
	}
	if len(got[day]) != n || rdb.Exists(ctx, "talos:tokens:indexcursor").Val() != 0 {
		t.Fatalf("after %d reads: %d of %d counters, cursor left %d", reads, len(got[day]), n, rdb.Exists(ctx, "talos:tokens:indexcursor").Val())
	}
	t.Logf("indexed %d counters over %d reads", n, reads)
}
