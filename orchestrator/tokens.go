package orchestrator

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/talos-ironclad/talos/llm"
)

// TokenDays is how many UTC days of token counts are kept and summarised:
// today and the six days before it.
const TokenDays = 7

// TokenCounter is an in-process Tokens: usage per model and UTC day, the
// last TokenDays days kept. It is safe for concurrent use.
type TokenCounter struct {
	mu     sync.Mutex
	counts map[TokenKey]llm.Usage
}

// TokenKey is one model on one UTC day ("2006-01-02").
type TokenKey struct {
	Model string `json:"model"`
	Day   string `json:"day"`
}

// TokenTotal is the usage of one TokenKey.
type TokenTotal struct {
	TokenKey
	llm.Usage
}

// NewTokenCounter returns an empty counter.
func NewTokenCounter() *TokenCounter { return &TokenCounter{counts: map[TokenKey]llm.Usage{}} }

// tokenDay is the UTC day of t as the counters name it.
func tokenDay(t time.Time) string { return t.UTC().Format(time.DateOnly) }

// Count adds u to model's total for today and forgets days older than
// TokenDays.
func (c *TokenCounter) Count(ctx context.Context, model string, u llm.Usage) error {
	now := time.Now()
	k := TokenKey{Model: model, Day: tokenDay(now)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, seen := c.counts[k]; !seen {
		oldest := tokenDay(now.AddDate(0, 0, -(TokenDays - 1)))
		for old := range c.counts {
			if old.Day < oldest {
				delete(c.counts, old)
			}
		}
	}
	c.counts[k] = c.counts[k].Add(u)
	return nil
}

// Day returns each model's usage on day (UTC, YYYY-MM-DD).
func (c *TokenCounter) Day(day string) map[string]llm.Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]llm.Usage{}
	for k, u := range c.counts {
		if k.Day == day {
			out[k.Model] = u
		}
	}
	return out
}

// Totals returns every model's usage per day, by day then model.
func (c *TokenCounter) Totals() []TokenTotal {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]TokenTotal, 0, len(c.counts))
	for k, u := range c.counts {
		out = append(out, TokenTotal{TokenKey: k, Usage: u})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Day != out[j].Day {
			return out[i].Day < out[j].Day
		}
		return out[i].Model < out[j].Model
	})
	return out
}
