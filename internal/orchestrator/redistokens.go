package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos/llm"
)

// TokenTTL is how long the per-day token counters live in Redis: a week.
const TokenTTL = 7 * 24 * time.Hour

// RedisTokens keeps token counts in Redis under
// talos:tokens:<model>:<YYYY-MM-DD UTC>:<prompt|completion>, each key
// expiring TokenTTL after its last write, so every process sharing the
// Redis (the daemon, talos ask) adds to one count that survives restarts.
type RedisTokens struct{ RDB redis.UniversalClient }

func tokenKey(model, day, kind string) string {
	return "talos:tokens:" + model + ":" + day + ":" + kind
}

// Count implements Tokens: both counters are raised and their expiry
// renewed in one pipeline. Negative counts are refused.
func (r RedisTokens) Count(ctx context.Context, model string, u llm.Usage) error {
	if u.PromptTokens < 0 || u.CompletionTokens < 0 {
		return fmt.Errorf("token counts must not be negative (prompt %d, completion %d)", u.PromptTokens, u.CompletionTokens)
	}
	day := time.Now().UTC().Format(time.DateOnly)
	p, c := tokenKey(model, day, "prompt"), tokenKey(model, day, "completion")
	_, err := r.RDB.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.IncrBy(ctx, p, int64(u.PromptTokens))
		pl.IncrBy(ctx, c, int64(u.CompletionTokens))
		pl.Expire(ctx, p, TokenTTL)
		pl.Expire(ctx, c, TokenTTL)
		return nil
	})
	return err
}

// Day returns model's usage on day (UTC, YYYY-MM-DD); missing keys count 0.
func (r RedisTokens) Day(ctx context.Context, model, day string) (llm.Usage, error) {
	vals, err := r.RDB.MGet(ctx, tokenKey(model, day, "prompt"), tokenKey(model, day, "completion")).Result()
	if err != nil {
		return llm.Usage{}, err
	}
	var u llm.Usage
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		var n int
		if _, err := fmt.Sscan(s, &n); err != nil {
			return u, errors.New("token counter " + tokenKey(model, day, []string{"prompt", "completion"}[i]) + " is not a number")
		}
		if i == 0 {
			u.PromptTokens = n
		} else {
			u.CompletionTokens = n
		}
	}
	return u, nil
}

// Tee counts in every Tokens it holds; the first error is returned after
// all were tried.
type Tee []Tokens

// Count implements Tokens.
func (t Tee) Count(ctx context.Context, model string, u llm.Usage) error {
	var errs []error
	for _, x := range t {
		if err := x.Count(ctx, model, u); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
