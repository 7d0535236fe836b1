package breaker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/breaker"
)

func Example() {
	b, err := breaker.New(breaker.Config{
		Name:             "gemini",
		FailureThreshold: 2,
		OpenFor:          []time.Duration{time.Minute, 5 * time.Minute, 25 * time.Minute, time.Hour},
	}, nil)
	if err != nil {
		panic(err)
	}
	flaky := func(context.Context) (string, error) { return "", errors.New("503 unavailable") }
	for i := 0; i < 3; i++ {
		_, err := breaker.Execute(context.Background(), b, flaky)
		fmt.Println(talos.CodeOf(err) == talos.CodeCircuitOpen, b.State())
	}
	fmt.Println("retry in", b.Remaining().Round(time.Second))
	// Output:
	// false closed
	// false open
	// true open
	// retry in 1m0s
}

func ExampleBreaker_Allow() {
	b, _ := breaker.New(breaker.Config{Name: "api"}, nil)
	ticket, err := b.Allow()
	if err != nil {
		fmt.Println("rejected:", err)
		return
	}
	// ... make the call; a 429 response carried "Retry-After: 120".
	ra, ok := breaker.ParseRetryAfter("120", time.Now())
	ticket.Report(breaker.RateLimitVerdict(ra, ok))
	fmt.Println(b.State(), b.Remaining() > 120*time.Second)
	// Output: closed true
}
