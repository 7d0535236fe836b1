package redisphase

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
)

// Defaults of the Redis clean-up.
const (
	// DefaultScanCount is the COUNT hint of each SCAN call.
	DefaultScanCount = 1000
	// DefaultBatchSize is how many keys one UNLINK deletes (the spec's
	// pipeline batch of 1,000).
	DefaultBatchSize = 1000
)

// DefaultProtected returns the key prefixes that are never deleted,
// whatever is registered as disposable: the spec's protected patterns
// (configuration, skill registry, system version, vector schema, audit) and
// the state other Talos packages keep in Redis (circuit breakers, chat
// history and sessions, VRAM leases, the lockdown).
func DefaultProtected() []string {
	return []string{
		"talos:config:", "talos:skill:registry", "talos:system:version", "talos:vector:schema", "talos:audit:",
		"talos:breaker:", "talos:history:", "talos:session:", "talos:lease:", "talos:vram:", "talos:lockdown:",
	}
}

// Config configures a Cleaner.
type Config struct {
	// Disposable lists the key prefixes whose keys the clean-up deletes.
	// Owners can add more with AddDisposable. A prefix inside a protected
	// prefix is refused (it could never delete anything).
	Disposable []string
	// Protected lists prefixes kept in addition to DefaultProtected.
	Protected []string
	// ScanCount is the SCAN COUNT hint (DefaultScanCount).
	ScanCount int64
	// BatchSize is how many keys one UNLINK deletes (DefaultBatchSize).
	BatchSize int
}

// Cleaner is the dream cycle's Redis clean-up: it SCANs (never KEYS) the
// keys under each disposable prefix and UNLINKs them in batches, except the
// keys under a protected prefix, which always win.
type Cleaner struct {
	rdb   redis.UniversalClient
	count int64
	batch int

	mu         sync.Mutex
	disposable []string
	protected  []string
}

// New returns a Cleaner over rdb. Every problem of cfg is reported at once.
func New(cfg Config, rdb redis.UniversalClient) (*Cleaner, error) {
	const op = "redisphase.New"
	var errs []error
	if rdb == nil {
		errs = append(errs, errors.New("the Redis client is nil"))
	}
	if cfg.ScanCount == 0 {
		cfg.ScanCount = DefaultScanCount
	}
	if cfg.ScanCount < 0 {
		errs = append(errs, fmt.Errorf("ScanCount %d is negative: want a positive count (default %d)", cfg.ScanCount, DefaultScanCount))
	}
	if cfg.BatchSize == 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.BatchSize < 0 {
		errs = append(errs, fmt.Errorf("BatchSize %d is negative: want a positive size (default %d)", cfg.BatchSize, DefaultBatchSize))
	}
	c := &Cleaner{rdb: rdb, count: cfg.ScanCount, batch: cfg.BatchSize, protected: DefaultProtected()}
	for _, p := range cfg.Protected {
		if err := c.addProtected(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range cfg.Disposable {
		if err := c.addDisposable(p); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, op, "the Redis clean-up configuration is invalid", errors.Join(errs...))
	}
	return c, nil
}

// AddDisposable registers prefix as disposable: the next clean-up deletes
// its keys (except protected ones).
func (c *Cleaner) AddDisposable(prefix string) error {
	if err := c.addDisposable(prefix); err != nil {
		return talos.E(talos.CodeConfigInvalid, "redisphase.AddDisposable", "prefix not registered", err)
	}
	return nil
}

// AddProtected registers prefix as protected: no clean-up deletes its keys.
func (c *Cleaner) AddProtected(prefix string) error {
	if err := c.addProtected(prefix); err != nil {
		return talos.E(talos.CodeConfigInvalid, "redisphase.AddProtected", "prefix not registered", err)
	}
	return nil
}

func (c *Cleaner) addDisposable(p string) error {
	if p == "" {
		return errors.New("a disposable prefix is empty: it would match every key; name the owner's prefix, for example \"talos:cache:\"")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if q, ok := c.protectedBy(p); ok {
		return fmt.Errorf("disposable prefix %s lies inside the protected prefix %q: its keys are never deleted", strconv.Quote(p), q)
	}
	if !slices.Contains(c.disposable, p) {
		c.disposable = append(c.disposable, p)
	}
	return nil
}

func (c *Cleaner) addProtected(p string) error {
	if p == "" {
		return errors.New("a protected prefix is empty: to delete nothing, register no disposable prefix")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !slices.Contains(c.protected, p) {
		c.protected = append(c.protected, p)
	}
	return nil
}

// protectedBy returns the protected prefix key falls under.
func (c *Cleaner) protectedBy(key string) (string, bool) {
	for _, p := range c.protected {
		if strings.HasPrefix(key, p) {
			return p, true
		}
	}
	return "", false
}

// Disposable returns the registered disposable prefixes.
func (c *Cleaner) Disposable() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.disposable)
}

// Protected returns the protected prefixes, defaults included.
func (c *Cleaner) Protected() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.protected)
}

// Phase returns the clean-up as the dream cycle's redis_flush phase (spec
// timeout 30 s).
func (c *Cleaner) Phase() dream.Phase {
	return dream.Phase{Name: dream.PhaseRedisFlush, Timeout: dream.TimeoutRedisFlush, Run: c.Run}
}

// progress is what the phase checkpoints: where the SCAN of which prefix
// stands, so a resumed cycle goes on from there.
type progress struct {
	Prefix    int    `json:"prefix"`
	Cursor    uint64 `json:"cursor"`
	Scanned   int64  `json:"scanned"`
	Deleted   int64  `json:"deleted"`
	Protected int64  `json:"protected"`
}

// Run deletes the keys under the disposable prefixes that no protected
// prefix covers. Its counters: keys_scanned, keys_deleted, keys_protected
// (under a disposable prefix but kept), used_memory_before and
// used_memory_after (bytes, from INFO memory; other clients write
// meanwhile, so they are reported, not checked). Inside a dream cycle it
// checkpoints its SCAN position after every batch and resumes from it.
func (c *Cleaner) Run(ctx context.Context) (dream.PhaseResult, error) {
	c.mu.Lock()
	disposable := slices.Clone(c.disposable)
	protected := slices.Clone(c.protected)
	c.mu.Unlock()
	if len(disposable) == 0 {
		return dream.PhaseResult{Skipped: "no disposable prefix is registered"}, nil
	}
	var pr progress
	_, _ = dream.LoadProgress(ctx, &pr) // outside a cycle, or nothing saved: from the start
	res := dream.PhaseResult{Counters: map[string]int64{}}
	if mem, err := c.usedMemory(ctx); err == nil {
		res.Counters["used_memory_before"] = mem
	}
	fill := func() {
		res.Counters["keys_scanned"] = pr.Scanned
		res.Counters["keys_deleted"] = pr.Deleted
		res.Counters["keys_protected"] = pr.Protected
	}
	var pending []string
	flush := func() error {
		for len(pending) > 0 {
			n := min(len(pending), c.batch)
			deleted, err := c.rdb.Unlink(ctx, pending[:n]...).Result()
			if err != nil {
				return fmt.Errorf("UNLINK %d keys: %w", n, err)
			}
			pr.Deleted += deleted
			pending = pending[n:]
		}
		return nil
	}
	// pr is the committed position: every key before pr.Cursor under the
	// prefix is deleted or kept. It moves only when nothing is pending, so
	// a resumed run never skips a key that was found but not yet deleted.
	for ; pr.Prefix < len(disposable); pr.Prefix, pr.Cursor = pr.Prefix+1, 0 {
		prefix := disposable[pr.Prefix]
		match := globEscape(prefix) + "*"
		cursor := pr.Cursor
		for {
			keys, next, err := c.rdb.Scan(ctx, cursor, match, c.count).Result()
			if err != nil {
				fill()
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				return res, talos.Errorf(talos.CodeRedis, "redisphase.Run", "SCAN %q: %w", match, err)
			}
			for _, k := range keys {
				pr.Scanned++
				if !strings.HasPrefix(k, prefix) {
					continue // defence in depth against a MATCH surprise
				}
				if protectedBy(protected, k) {
					pr.Protected++
					continue
				}
				pending = append(pending, k)
			}
			if len(pending) >= c.batch || next == 0 {
				if err := flush(); err != nil {
					_ = dream.SaveProgress(ctx, pr) // the deletions so far, at the committed position
					fill()
					if ctx.Err() != nil {
						return res, ctx.Err()
					}
					return res, talos.E(talos.CodeRedis, "redisphase.Run", "delete disposable keys under "+strconv.Quote(prefix), err)
				}
			}
			cursor = next
			if len(pending) == 0 {
				pr.Cursor = cursor
				_ = dream.SaveProgress(ctx, pr) // best effort; outside a cycle it has nowhere to go
			}
			if next == 0 {
				break
			}
			if err := ctx.Err(); err != nil {
				fill()
				return res, err
			}
		}
	}
	fill()
	if mem, err := c.usedMemory(ctx); err == nil {
		res.Counters["used_memory_after"] = mem
	}
	if pr.Scanned == 0 {
		res.Skipped = "no keys under the disposable prefixes " + strings.Join(disposable, ", ")
	}
	return res, nil
}

func protectedBy(protected []string, key string) bool {
	for _, p := range protected {
		if strings.HasPrefix(key, p) {
			return true
		}
	}
	return false
}

// usedMemory reads used_memory from INFO memory.
func (c *Cleaner) usedMemory(ctx context.Context) (int64, error) {
	info, err := c.rdb.Info(ctx, "memory").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "used_memory:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO memory has no used_memory line")
}

// globEscape escapes the characters SCAN MATCH treats as a pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
