package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
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
// The models counted on a day are the set talos:tokens:models:<day>
// (same expiry), so reading a day's usage never walks the keyspace.
type RedisTokens struct{ RDB redis.UniversalClient }

func tokenKey(model, day, kind string) string {
	return "talos:tokens:" + model + ":" + day + ":" + kind
}

// modelsKey is the set of the models counted on day.
func modelsKey(day string) string { return "talos:tokens:models:" + day }

// indexedKey marks that the counters written before the per-day model sets
// existed were added to them (see Days). It expires after indexEvery, so
// that counters an older binary still running writes without the sets are
// seen within that time, at the cost of one SCAN each time.
const indexedKey = "talos:tokens:indexed"

// indexEvery is how long indexedKey lives.
const indexEvery = time.Hour

// indexCursorKey holds the SCAN cursor of an indexing pass in progress:
// each read advances the pass by at most indexScanSteps SCAN calls and
// leaves the cursor here for the next read (in any process), so a huge
// keyspace is indexed over several reads instead of making every read run
// out of its time (it expires with indexEvery, so an abandoned pass starts
// over).
const indexCursorKey = "talos:tokens:indexcursor"

// indexScanSteps is how many SCAN calls (of tokenScanCount keys each, as a
// hint) one read may spend indexing.
var indexScanSteps = 16

// Count implements Tokens: both counters are raised and their expiry
// renewed in one pipeline. Negative counts are refused.
func (r RedisTokens) Count(ctx context.Context, model string, u llm.Usage) error {
	if u.PromptTokens < 0 || u.CompletionTokens < 0 {
		return fmt.Errorf("token counts must not be negative (prompt %d, completion %d)", u.PromptTokens, u.CompletionTokens)
	}
	day := time.Now().UTC().Format(time.DateOnly)
	p, c, m := tokenKey(model, day, "prompt"), tokenKey(model, day, "completion"), modelsKey(day)
	_, err := r.RDB.Pipelined(ctx, func(pl redis.Pipeliner) error {
		pl.IncrBy(ctx, p, int64(u.PromptTokens))
		pl.IncrBy(ctx, c, int64(u.CompletionTokens))
		pl.SAdd(ctx, m, model)
		pl.Expire(ctx, p, TokenTTL)
		pl.Expire(ctx, c, TokenTTL)
		pl.Expire(ctx, m, TokenTTL)
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

// tokenScanCount is the COUNT hint of the SCAN that indexes counters
// written before the per-day model sets, and the MGET batch size.
const tokenScanCount = 1000

// Days returns the usage per model on each of days (UTC, YYYY-MM-DD) that
// has counters, reading each day's set of models and then their counters.
// Counters written without those sets (before they existed, or by an older
// binary still running) are added to them by a SCAN (never KEYS) once an
// hour, which indexedKey marks as done; the SCAN is spread over reads, a
// bounded number of steps each, so a read stays quick on any keyspace (a
// counter not yet reached is missing from the reads until it is).
func (r RedisTokens) Days(ctx context.Context, days []string) (map[string]map[string]llm.Usage, error) {
	if len(days) == 0 {
		return map[string]map[string]llm.Usage{}, nil
	}
	if err := r.index(ctx); err != nil {
		return nil, err
	}
	days = slices.Compact(slices.Sorted(slices.Values(days)))
	cmds, err := r.RDB.Pipelined(ctx, func(pl redis.Pipeliner) error {
		for _, d := range days {
			pl.SMembers(ctx, modelsKey(d))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	type counter struct {
		model, day string
		prompt     bool
	}
	var keys []string
	var counters []counter
	for i, c := range cmds {
		for _, model := range c.(*redis.StringSliceCmd).Val() {
			keys = append(keys, tokenKey(model, days[i], "prompt"), tokenKey(model, days[i], "completion"))
			counters = append(counters, counter{model, days[i], true}, counter{model, days[i], false})
		}
	}
	out := map[string]map[string]llm.Usage{}
	for len(keys) > 0 {
		batch := keys[:min(len(keys), tokenScanCount)]
		of := counters[:len(batch)]
		keys, counters = keys[len(batch):], counters[len(batch):]
		vals, err := r.RDB.MGet(ctx, batch...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			s, ok := v.(string)
			if !ok {
				continue // expired before the set, or never written
			}
			var n int
			if _, err := fmt.Sscan(s, &n); err != nil || n < 0 {
				return nil, fmt.Errorf("token counter %s holds %q, not a count", batch[i], s)
			}
			c := of[i]
			if out[c.day] == nil {
				out[c.day] = map[string]llm.Usage{}
			}
			u := out[c.day][c.model]
			if c.prompt {
				u.PromptTokens += n
			} else {
				u.CompletionTokens += n
			}
			out[c.day][c.model] = u
		}
	}
	return out, nil
}

// index adds the counters written before the per-day model sets existed
// to those sets, unless indexedKey says that was done: it goes on from the
// cursor indexCursorKey holds for at most indexScanSteps SCAN calls, then
// leaves the cursor for the next read, or marks the pass done. What a read
// collected is kept even when its time runs out mid-way. The cursor and
// the mark are written only while no other process has marked the pass
// done meanwhile (WATCH), so a slower process cannot leave a stale cursor
// behind a finished pass.
func (r RedisTokens) index(ctx context.Context) error {
	vals, err := r.RDB.MGet(ctx, indexedKey, indexCursorKey).Result()
	if err != nil || vals[0] != nil {
		return err
	}
	var cursor uint64
	if s, ok := vals[1].(string); ok {
		if cursor, err = strconv.ParseUint(s, 10, 64); err != nil {
			cursor = 0 // not ours to trust: start the pass over
		}
	}
	start := cursor
	byDay := map[string][]any{}
	var scanErr error
	for range indexScanSteps {
		keys, next, err := r.RDB.Scan(ctx, cursor, "talos:tokens:*", tokenScanCount).Result()
		if err != nil {
			scanErr = err
			break
		}
		for _, k := range keys {
			if model, day, _, ok := parseTokenKey(k); ok {
				byDay[day] = append(byDay[day], model)
			}
		}
		if cursor = next; cursor == 0 {
			break
		}
	}
	if scanErr != nil && cursor == start && len(byDay) == 0 {
		return scanErr // no progress to keep
	}
	// Keep what was collected and how far the pass got, even pages that
	// matched nothing: the save gets a second of its own when the read's
	// time is (nearly) out.
	sctx := ctx
	if dl, ok := ctx.Deadline(); ctx.Err() != nil || ok && time.Until(dl) < time.Second {
		var cancel context.CancelFunc
		sctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), time.Second)
		defer cancel()
	}
	err = r.RDB.Watch(sctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(sctx, indexedKey).Result()
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(sctx, func(pl redis.Pipeliner) error {
			for day, models := range byDay {
				pl.SAdd(sctx, modelsKey(day), models...)
				pl.Expire(sctx, modelsKey(day), TokenTTL)
			}
			switch {
			case n > 0: // another process finished the pass meanwhile
			case scanErr == nil && cursor == 0:
				pl.Set(sctx, indexedKey, "1", indexEvery)
				pl.Del(sctx, indexCursorKey)
			default:
				pl.Set(sctx, indexCursorKey, strconv.FormatUint(cursor, 10), indexEvery)
			}
			return nil
		})
		return err
	}, indexedKey)
	if errors.Is(err, redis.TxFailedErr) {
		// The mark changed while this read saved (another process finished
		// the pass, or the mark expired): the next read goes on from the
		// cursor it finds, at worst redoing this batch.
		err = nil
	}
	return errors.Join(scanErr, err)
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
