package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"strings"
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

// tokenScanCount is the COUNT hint of the SCAN that finds the counters.
const tokenScanCount = 1000

// Days returns the usage per model on each of days (UTC, YYYY-MM-DD) that
// has counters, found with SCAN (never KEYS). Model names may hold ':'; a
// key is read from its end (day, then kind).
func (r RedisTokens) Days(ctx context.Context, days []string) (map[string]map[string]llm.Usage, error) {
	want := make(map[string]bool, len(days))
	for _, d := range days {
		want[d] = true
	}
	var keys []string
	iter := r.RDB.Scan(ctx, 0, "talos:tokens:*", tokenScanCount).Iterator()
	for iter.Next(ctx) {
		if _, day, _, ok := parseTokenKey(iter.Val()); ok && want[day] {
			keys = append(keys, iter.Val())
		}
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	out := map[string]map[string]llm.Usage{}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), tokenScanCount)]
		keys = keys[len(batch):]
		vals, err := r.RDB.MGet(ctx, batch...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // expired between SCAN and MGET
			}
			var n int
			if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
				return nil, fmt.Errorf("token counter %s holds %q, not a count", batch[i], s)
			}
			model, day, kind, _ := parseTokenKey(batch[i])
			if out[day] == nil {
				out[day] = map[string]llm.Usage{}
			}
			u := out[day][model]
			if kind == "prompt" {
				u.PromptTokens += n
			} else {
				u.CompletionTokens += n
			}
			out[day][model] = u
		}
	}
	return out, nil
}

// parseTokenKey splits talos:tokens:<model>:<day>:<kind>.
func parseTokenKey(key string) (model, day, kind string, ok bool) {
	rest, ok := strings.CutPrefix(key, "talos:tokens:")
	if !ok {
		return "", "", "", false
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return "", "", "", false
	}
	rest, kind = rest[:i], rest[i+1:]
	j := strings.LastIndexByte(rest, ':')
	if j <= 0 || (kind != "prompt" && kind != "completion") {
		return "", "", "", false
	}
	model, day = rest[:j], rest[j+1:]
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return "", "", "", false
	}
	return model, day, kind, true
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
