package orchestrator

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/talos-ironclad/talos/llm"
)

// TokenCounter is an in-process Tokens: usage per model and UTC day. It is
// safe for concurrent use.
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

// Count adds u to model's total for today.
func (c *TokenCounter) Count(ctx context.Context, model string, u llm.Usage) error {
	k := TokenKey{Model: model, Day: time.Now().UTC().Format(time.DateOnly)}
	c.mu.Lock()
	c.counts[k] = c.counts[k].Add(u)
	c.mu.Unlock()
	return nil
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
