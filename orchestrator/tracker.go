package orchestrator

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/llm"
)

// DefaultTokenStoreTimeout bounds each Redis call of a Tracker, so a Redis
// that hangs delays a turn by at most this much.
const DefaultTokenStoreTimeout = 2 * time.Second

// Token sources of a TokenSummary.
const (
	TokenSourceRedis  = "redis"  // every process sharing the Redis
	TokenSourceMemory = "memory" // this process only
)

// TrackerConfig configures a Tracker.
type TrackerConfig struct {
	// DailyLimit is the day's token count (every model, UTC day) at which
	// escalation is refused until 00:00 UTC (TOKEN_DAILY_LIMIT); 0 means
	// no limit.
	DailyLimit int
	// StoreTimeout bounds each Redis call (DefaultTokenStoreTimeout).
	StoreTimeout time.Duration
	// Logger receives a warning when Redis fails and a note when it is
	// back; nil discards.
	Logger *slog.Logger
}

// Tracker is the token tracker: every model's prompt and completion
// tokens per UTC day, counted in this process and, when it has a Redis,
// in Redis under talos:tokens:<model>:<day>:<prompt|completion> (kept
// TokenTTL). A Redis failure never fails a count or a summary: the
// in-process counts answer instead, and the summary says so. It refuses
// escalation once the day's total reaches DailyLimit (Budget). It is safe
// for concurrent use.
type Tracker struct {
	cfg     TrackerConfig
	log     *slog.Logger
	mem     *TokenCounter
	redis   *RedisTokens
	started time.Time

	mu      sync.Mutex
	session map[string]llm.Usage
	down    bool // the last Redis call failed
}

// Budget refuses escalation to the cloud model when the day's token budget
// is spent. *Tracker implements it.
type Budget interface {
	// EscalationRefusal returns why escalation must not happen now (a
	// T026 error whose message is for the user), or nil.
	EscalationRefusal(ctx context.Context) error
}

var (
	_ Tokens = (*Tracker)(nil)
	_ Budget = (*Tracker)(nil)
)

// NewTracker returns a Tracker; rdb nil keeps the counts in this process
// only.
func NewTracker(cfg TrackerConfig, rdb redis.UniversalClient) (*Tracker, error) {
	var problems []error
	if cfg.DailyLimit < 0 {
		problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, "orchestrator.NewTracker", "DailyLimit is %d: it must be a positive token count, or 0 for no limit", cfg.DailyLimit))
	}
	if cfg.StoreTimeout < 0 {
		problems = append(problems, talos.Errorf(talos.CodeConfigInvalid, "orchestrator.NewTracker", "StoreTimeout is %s: it must be positive, or 0 for %s", cfg.StoreTimeout, DefaultTokenStoreTimeout))
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = DefaultTokenStoreTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Tracker{cfg: cfg, log: log, mem: NewTokenCounter(), started: time.Now(), session: map[string]llm.Usage{}}
	if rdb != nil {
		t.redis = &RedisTokens{RDB: rdb}
	}
	return t, nil
}

// DailyLimit is the configured limit (0: none).
func (t *Tracker) DailyLimit() int { return t.cfg.DailyLimit }

// Count implements Tokens. Negative counts are refused. The count always
// lands in this process; a Redis failure is returned (the loop logs it)
// but the count is not lost from this process's view.
func (t *Tracker) Count(ctx context.Context, model string, u llm.Usage) error {
	if u.PromptTokens < 0 || u.CompletionTokens < 0 {
		return talos.Errorf(talos.CodeInputInvalid, "orchestrator.Tracker.Count", "token counts must not be negative (prompt %d, completion %d)", u.PromptTokens, u.CompletionTokens)
	}
	t.mem.Count(ctx, model, u)
	t.mu.Lock()
	t.session[model] = t.session[model].Add(u)
	t.mu.Unlock()
	t.log.DebugContext(ctx, "TOKEN_RECORD", "model", model, "prompt", u.PromptTokens, "completion", u.CompletionTokens)
	if t.redis == nil {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), t.cfg.StoreTimeout)
	defer cancel()
	return t.redisDone(ctx, t.redis.Count(rctx, model, u))
}

// redisDone notes whether Redis answered, logging each change once, and
// returns err wrapped as a T001 failure.
func (t *Tracker) redisDone(ctx context.Context, err error) error {
	t.mu.Lock()
	was := t.down
	t.down = err != nil
	t.mu.Unlock()
	switch {
	case err != nil && !was:
		t.log.WarnContext(ctx, "token tracker: Redis does not answer; counting in this process until it does", "err", err)
	case err == nil && was:
		t.log.InfoContext(ctx, "token tracker: Redis answers again")
	}
	if err != nil {
		return talos.E(talos.CodeRedis, "orchestrator.Tracker", "the token counters in Redis were not updated", err)
	}
	return nil
}

// days returns the usage per model on each of days: from Redis when it
// answers (source TokenSourceRedis), else this process's (with the reason).
func (t *Tracker) days(ctx context.Context, days []string) (map[string]map[string]llm.Usage, string, error) {
	var err error
	if t.redis != nil {
		rctx, cancel := context.WithTimeout(ctx, t.cfg.StoreTimeout)
		got, rerr := t.redis.Days(rctx, days)
		cancel()
		if err = t.redisDone(ctx, rerr); err == nil {
			return got, TokenSourceRedis, nil
		}
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
	}
	out := map[string]map[string]llm.Usage{}
	for _, d := range days {
		out[d] = t.mem.Day(d)
	}
	return out, TokenSourceMemory, err
}

// EscalationRefusal implements Budget: a T026 error once today's total of
// every model reached DailyLimit. Without Redis (or while it fails) the
// total is this process's.
func (t *Tracker) EscalationRefusal(ctx context.Context) error {
	if t.cfg.DailyLimit == 0 {
		return nil
	}
	today := tokenDay(time.Now())
	got, _, _ := t.days(ctx, []string{today})
	total := 0
	for _, u := range got[today] {
		total += u.Total()
	}
	if total < t.cfg.DailyLimit {
		return nil
	}
	return talos.Errorf(talos.CodeTokenLimit, "orchestrator.Tracker",
		"Today's token limit is reached (%d of %d tokens, UTC day %s), so this answer comes from the local model only; the cloud model is used again after 00:00 UTC.",
		total, t.cfg.DailyLimit, today)
}

// ModelTokens is one model's token counts.
type ModelTokens struct {
	PromptTokens     int `json:"prompt_tokens"`
	CompletionTokens int `json:"completion_tokens"`
	TotalTokens      int `json:"total_tokens"`
}

func modelTokens(u llm.Usage) ModelTokens {
	return ModelTokens{PromptTokens: u.PromptTokens, CompletionTokens: u.CompletionTokens, TotalTokens: u.Total()}
}

// LiveTokens are today's counts.
type LiveTokens struct {
	// Date is today, UTC (YYYY-MM-DD).
	Date   string                 `json:"date"`
	Models map[string]ModelTokens `json:"models"`
	// DailyTotal is the sum over every model today; DailyLimit the limit
	// (0: none) at which escalation is refused.
	DailyTotal int `json:"daily_total"`
	DailyLimit int `json:"daily_limit"`
	// EscalationRefused is true when DailyTotal reached DailyLimit.
	EscalationRefused bool `json:"escalation_refused"`
}

// DayTokens is one day of the history: each model's total.
type DayTokens struct {
	Date          string         `json:"date"`
	Models        map[string]int `json:"models"`
	CombinedTotal int            `json:"combined_total"`
}

// TokenSummary is the tracker's view for the dashboard and the API.
type TokenSummary struct {
	// Session is this process's counts since it started (SessionSince).
	Session      map[string]ModelTokens `json:"session"`
	SessionSince time.Time              `json:"session_since"`
	Live         LiveTokens             `json:"live"`
	// History has TokenDays entries, today first.
	History []DayTokens `json:"history"`
	// Source is where Live and History come from: TokenSourceRedis, or
	// TokenSourceMemory (this process only; Note says why when a Redis is
	// configured).
	Source string `json:"source"`
	Note   string `json:"note,omitempty"`
}

// Summary returns the session counts, today's live counts and the
// TokenDays-day history. It fails only when ctx ends; a Redis failure
// yields this process's counts with a Note.
func (t *Tracker) Summary(ctx context.Context) (TokenSummary, error) {
	now := time.Now()
	days := make([]string, TokenDays)
	for i := range days {
		days[i] = tokenDay(now.AddDate(0, 0, -i))
	}
	got, source, err := t.days(ctx, days)
	if got == nil {
		return TokenSummary{}, err
	}
	s := TokenSummary{Session: map[string]ModelTokens{}, SessionSince: t.started.UTC(), Source: source, History: make([]DayTokens, 0, TokenDays)}
	if err != nil {
		s.Note = "Redis does not answer, so these are this process's counts only: " + talos.CodeOf(err).Error()
	}
	t.mu.Lock()
	for m, u := range t.session {
		s.Session[m] = modelTokens(u)
	}
	t.mu.Unlock()
	for _, d := range days {
		dt := DayTokens{Date: d, Models: map[string]int{}}
		for m, u := range got[d] {
			dt.Models[m] = u.Total()
			dt.CombinedTotal += u.Total()
		}
		s.History = append(s.History, dt)
	}
	live := LiveTokens{Date: days[0], Models: map[string]ModelTokens{}, DailyLimit: t.cfg.DailyLimit}
	for m, u := range got[days[0]] {
		live.Models[m] = modelTokens(u)
		live.DailyTotal += u.Total()
	}
	live.EscalationRefused = live.DailyLimit > 0 && live.DailyTotal >= live.DailyLimit
	s.Live = live
	return s, nil
}
