package redis

import (
	"context"
	"encoding/json"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/rag"
)

// KeyPrefix prefixes every key this package writes (the nightly
// maintenance cycle's Redis flush must keep it).
const KeyPrefix = "talos:history:"

// History is the Redis history.
type History struct {
	cfg rag.HistoryConfig
	rdb goredis.UniversalClient
}

var _ rag.History = (*History)(nil)

// New returns a history on rdb (the caller owns and closes the client).
func New(cfg rag.HistoryConfig, rdb goredis.UniversalClient) (*History, error) {
	cfg, err := cfg.WithDefaults()
	if err != nil {
		return nil, err
	}
	if rdb == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "redis.New", "the Redis client is nil")
	}
	return &History{cfg: cfg, rdb: rdb}, nil
}

func redisErr(op string, err error) error {
	return talos.E(talos.CodeRedis, op, "Redis failed; check that it is running and reachable", err)
}

// Append implements rag.History.
func (h *History) Append(ctx context.Context, session string, m rag.Message) error {
	const op = "redis.History.Append"
	if err := rag.ValidateSession(op, session); err != nil {
		return err
	}
	if m.At.IsZero() {
		m.At = time.Now()
	}
	data, err := json.Marshal(m)
	if err != nil {
		return talos.E(talos.CodeConfigInvalid, op, "message cannot be encoded", err)
	}
	key := KeyPrefix + session
	_, err = h.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.RPush(ctx, key, data)
		p.LTrim(ctx, key, int64(-h.cfg.Limit), -1)
		p.PExpire(ctx, key, h.cfg.TTL)
		return nil
	})
	if err != nil {
		return redisErr(op, err)
	}
	return nil
}

// Recent implements rag.History.
func (h *History) Recent(ctx context.Context, session string, n int) ([]rag.Message, error) {
	const op = "redis.History.Recent"
	if err := rag.ValidateSession(op, session); err != nil {
		return nil, err
	}
	start := int64(0)
	if n > 0 {
		start = int64(-n)
	}
	raw, err := h.rdb.LRange(ctx, KeyPrefix+session, start, -1).Result()
	if err != nil {
		return nil, redisErr(op, err)
	}
	out := make([]rag.Message, 0, len(raw))
	for _, s := range raw {
		var m rag.Message
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			continue // a foreign value: skip rather than fail the conversation
		}
		out = append(out, m)
	}
	return out, nil
}

// Clear implements rag.History.
func (h *History) Clear(ctx context.Context, session string) error {
	const op = "redis.History.Clear"
	if err := rag.ValidateSession(op, session); err != nil {
		return err
	}
	if err := h.rdb.Del(ctx, KeyPrefix+session).Err(); err != nil {
		return redisErr(op, err)
	}
	return nil
}
