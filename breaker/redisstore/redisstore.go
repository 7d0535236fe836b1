package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
)

// DefaultPrefix is the key prefix when Config.Prefix is empty.
const DefaultPrefix = "talos:breaker:"

// stateTTLExtra is how long a state record outlives its open period.
const stateTTLExtra = 24 * time.Hour

// Config configures a Store.
type Config struct {
	// Prefix of every key (DefaultPrefix).
	Prefix string
}

// Store is a breaker.Store in Redis. Every multi-step operation is one Lua
// script, so it is atomic across processes. It is safe for concurrent use.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var _ breaker.Store = (*Store)(nil)

// New returns a Store using rdb, which the caller owns and closes.
func New(cfg Config, rdb redis.UniversalClient) (*Store, error) {
	if rdb == nil {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "redisstore.New", "the Redis client is nil: pass a *redis.Client")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	return &Store{rdb: rdb, prefix: cfg.Prefix}, nil
}

func (s *Store) key(name, kind string) string { return s.prefix + name + ":" + kind }

func wrap(op, name string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("redisstore.%s %q: %w", op, name, err)
	}
	return talos.E(talos.CodeRedis, "redisstore."+op,
		fmt.Sprintf("breaker %q: Redis call failed; check that Redis is reachable (the breaker keeps its local state meanwhile)", name), err)
}

// addFailure: KEYS[1] zset; ARGV: at_us, from_us, member, ttl_ms.
var addFailure = redis.NewScript(`
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return redis.call('ZCARD', KEYS[1])
`)

// AddFailure implements breaker.Store.
func (s *Store) AddFailure(ctx context.Context, name string, at time.Time, window time.Duration) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, wrap("AddFailure", name, err)
	}
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	atUS := at.UnixMicro()
	member := strconv.FormatInt(atUS, 10) + ":" + hex.EncodeToString(rnd[:])
	ttl := max(window.Milliseconds(), 1000)
	n, err := addFailure.Run(ctx, s.rdb, []string{s.key(name, "failures")},
		atUS, atUS-window.Microseconds(), member, ttl).Int()
	return n, wrap("AddFailure", name, err)
}

// ClearFailures implements breaker.Store.
func (s *Store) ClearFailures(ctx context.Context, name string) error {
	return wrap("ClearFailures", name, s.rdb.Del(ctx, s.key(name, "failures")).Err())
}

// save: KEYS[1] hash; ARGV: state, until_us, step, updated_us, ttl_ms.
var save = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], 'updated_us')
if old and tonumber(old) > tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'until_us', ARGV[2], 'step', ARGV[3], 'updated_us', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// Save implements breaker.Store.
func (s *Store) Save(ctx context.Context, name string, r breaker.Record) error {
	until := int64(0)
	if !r.Until.IsZero() {
		until = r.Until.UnixMicro()
	}
	ttl := stateTTLExtra
	if d := time.Until(r.Until); d > 0 {
		ttl += d
	}
	err := save.Run(ctx, s.rdb, []string{s.key(name, "state")},
		int(r.State), until, r.Step, r.Updated.UnixMicro(), ttl.Milliseconds()).Err()
	return wrap("Save", name, err)
}

func (s *Store) probesKey(name string, period int64) string {
	return s.key(name, "probes:"+strconv.FormatInt(period, 10))
}

// probesTTL is how long the probe record of one half-open period is kept.
const probesTTL = stateTTLExtra

// succeeded is the score of a probe that succeeded (2^53 µs, year 2255: past
// any lease end and exact in Lua's doubles).
const succeeded = "9007199254740992"

// acquireProbe: KEYS[1] zset of probe slots (score = lease end in unix µs,
// `succeeded` once the probe succeeded); ARGV: at_us, lease_end_us, member, max, ttl_ms.
var acquireProbe = redis.NewScript(`
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then return 1 end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return 1
`)

// AcquireProbe implements breaker.Store.
func (s *Store) AcquireProbe(ctx context.Context, name string, period int64, probe string, max int, at time.Time, lease time.Duration) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, wrap("AcquireProbe", name, err)
	}
	atUS := at.UnixMicro()
	n, err := acquireProbe.Run(ctx, s.rdb, []string{s.probesKey(name, period)},
		atUS, atUS+lease.Microseconds(), probe, max, probesTTL.Milliseconds()).Int()
	return n == 1, wrap("AcquireProbe", name, err)
}

// releaseProbe: KEYS[1] zset; ARGV: member, succeeded. A succeeded probe keeps its slot.
var releaseProbe = redis.NewScript(`
local sc = redis.call('ZSCORE', KEYS[1], ARGV[1])
if sc and tonumber(sc) < tonumber(ARGV[2]) then redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
`)

// ReleaseProbe implements breaker.Store.
func (s *Store) ReleaseProbe(ctx context.Context, name string, period int64, probe string) error {
	return wrap("ReleaseProbe", name, releaseProbe.Run(ctx, s.rdb, []string{s.probesKey(name, period)}, probe, succeeded).Err())
}

// probeSuccess: KEYS[1] zset; ARGV: member, ttl_ms, succeeded.
var probeSuccess = redis.NewScript(`
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCOUNT', KEYS[1], ARGV[3], '+inf')
`)

// ProbeSuccess implements breaker.Store.
func (s *Store) ProbeSuccess(ctx context.Context, name string, period int64, probe string) (int, error) {
	n, err := probeSuccess.Run(ctx, s.rdb, []string{s.probesKey(name, period)}, probe, probesTTL.Milliseconds(), succeeded).Int()
	return n, wrap("ProbeSuccess", name, err)
}

// Load implements breaker.Store.
func (s *Store) Load(ctx context.Context, name string) (breaker.Record, bool, error) {
	m, err := s.rdb.HGetAll(ctx, s.key(name, "state")).Result()
	if err != nil {
		return breaker.Record{}, false, wrap("Load", name, err)
	}
	if len(m) == 0 {
		return breaker.Record{}, false, nil
	}
	st, err1 := strconv.Atoi(m["state"])
	until, err2 := strconv.ParseInt(m["until_us"], 10, 64)
	step, err3 := strconv.Atoi(m["step"])
	upd, err4 := strconv.ParseInt(m["updated_us"], 10, 64)
	if err := errors.Join(err1, err2, err3, err4); err != nil || st < 0 || st > int(breaker.HalfOpen) {
		return breaker.Record{}, false, talos.E(talos.CodeRedis, "redisstore.Load",
			fmt.Sprintf("breaker %q: the record at %s is malformed (%v); delete the key to reset it", name, s.key(name, "state"), m), err)
	}
	r := breaker.Record{State: breaker.State(st), Step: step, Updated: time.UnixMicro(upd)}
	if until != 0 {
		r.Until = time.UnixMicro(until)
	}
	return r, true, nil
}
