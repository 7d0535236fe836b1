package boot

import (
	"context"
	"fmt"
	"time"
)

// Retry policies of the boot: each service is probed at a fixed 1 s
// interval, at most N times (N-1 waits between them).
const (
	// RetryDelay is the fixed wait between two probes (RETRY_DELAY in the
	// original specification's boot sequence).
	RetryDelay = time.Second
	// RedisAttempts is the original boot sequence's MAX_RETRIES for Redis.
	RedisAttempts = 10
	// ChromaAttempts is the original boot sequence's retry count for the
	// Chroma heartbeat.
	ChromaAttempts = 15
	// PostgresAttempts is the original boot sequence's retry count for
	// pg_isready.
	PostgresAttempts = 15
	// DockerAttempts is our choice for the Docker ping (the original boot
	// sequence pings its socket proxy once); the same as Redis.
	DockerAttempts = 10
)

// RetryPolicy says how often to try and how long to wait between tries.
type RetryPolicy struct {
	Attempts int           // at least 1
	Delay    time.Duration // wait between two attempts
}

// Retry calls fn until it succeeds, p.Attempts calls were made, or ctx is
// done. It waits p.Delay between calls (never after the last one). onRetry,
// if not nil, is called before each wait with the attempt that just failed
// (1-based) and its error, which is where "Waiting for Redis... (attempt
// i/10)" gets logged. The error returned on exhaustion wraps the last
// failure and says how many attempts were made.
func Retry(ctx context.Context, p RetryPolicy, onRetry func(attempt int, err error), fn func(ctx context.Context) error) error {
	if p.Attempts < 1 {
		p.Attempts = 1
	}
	var last error
	for attempt := 1; attempt <= p.Attempts; attempt++ {
		if err := ctx.Err(); err != nil {
			if last == nil {
				return err
			}
			return fmt.Errorf("gave up after %d of %d attempts (%v): %w", attempt-1, p.Attempts, err, last)
		}
		last = fn(ctx)
		if last == nil {
			return nil
		}
		if attempt == p.Attempts {
			break
		}
		if onRetry != nil {
			onRetry(attempt, last)
		}
		t := time.NewTimer(p.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("gave up after %d of %d attempts (%v): %w", attempt, p.Attempts, ctx.Err(), last)
		case <-t.C:
		}
	}
	return fmt.Errorf("failed after %d attempts: %w", p.Attempts, last)
}
