package breaker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sony/gobreaker/v2"
	"github.com/talos-ironclad/talos/breaker"
)

// The benchmarks compare our Execute with sony/gobreaker/v2 configured the
// same way (a 300 s rolling window of 10 s buckets, 5 failures trip, 60 min
// open, 3 half-open requests). Run them with
//
//	go test -run '^$' -bench . -benchmem ./breaker/
//
// and see docs/benchmarks.md (breaker section).

var benchSink int

func benchOurs(b *testing.B) *breaker.Breaker {
	br, err := breaker.New(breaker.Config{Name: "bench"}, nil)
	if err != nil {
		b.Fatal(err)
	}
	return br
}

func benchTheirs() *gobreaker.CircuitBreaker[int] {
	return gobreaker.NewCircuitBreaker[int](gobreaker.Settings{
		Name:         "bench",
		MaxRequests:  3,
		Interval:     300 * time.Second,
		BucketPeriod: 10 * time.Second,
		Timeout:      60 * time.Minute,
		ReadyToTrip:  func(c gobreaker.Counts) bool { return c.TotalFailures >= 5 },
	})
}

func BenchmarkExecuteClosedSuccess(b *testing.B) {
	br := benchOurs(b)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		v, _ := breaker.Execute(ctx, br, fn)
		benchSink += v
	}
}

func BenchmarkGobreakerClosedSuccess(b *testing.B) {
	cb := benchTheirs()
	fn := func() (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		v, _ := cb.Execute(fn)
		benchSink += v
	}
}

// gobreaker with its default Settings (fixed window, trips after more
// than 5 consecutive failures): its cheapest configuration.
func BenchmarkGobreakerDefaultClosedSuccess(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{Name: "bench"})
	fn := func() (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		v, _ := cb.Execute(fn)
		benchSink += v
	}
}

func BenchmarkGobreakerDefaultOpenReject(b *testing.B) {
	cb := gobreaker.NewCircuitBreaker[int](gobreaker.Settings{Name: "bench", Timeout: time.Hour})
	fail := errors.New("x")
	for i := 0; i < 6; i++ {
		_, _ = cb.Execute(func() (int, error) { return 0, fail })
	}
	if cb.State() != gobreaker.StateOpen {
		b.Fatal("gobreaker did not open")
	}
	fn := func() (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		v, err := cb.Execute(fn)
		if err == nil {
			b.Fatal("admitted")
		}
		benchSink += v
	}
}

func BenchmarkExecuteOpenReject(b *testing.B) {
	br := benchOurs(b)
	br.Trip(0, "bench")
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		v, err := breaker.Execute(ctx, br, fn)
		if err == nil {
			b.Fatal("admitted")
		}
		benchSink += v
	}
}

func BenchmarkGobreakerOpenReject(b *testing.B) {
	cb := benchTheirs()
	fail := errors.New("x")
	for i := 0; i < 5; i++ {
		_, _ = cb.Execute(func() (int, error) { return 0, fail })
	}
	if cb.State() != gobreaker.StateOpen {
		b.Fatal("gobreaker did not open")
	}
	fn := func() (int, error) { return 1, nil }
	b.ReportAllocs()
	for b.Loop() {
		v, err := cb.Execute(fn)
		if err == nil {
			b.Fatal("admitted")
		}
		benchSink += v
	}
}

func BenchmarkAllowDoneClosedSuccess(b *testing.B) {
	br := benchOurs(b)
	b.ReportAllocs()
	for b.Loop() {
		t, err := br.Allow()
		if err != nil {
			b.Fatal(err)
		}
		t.Done(nil)
	}
}

func BenchmarkExecuteClosedSuccessParallel(b *testing.B) {
	br := benchOurs(b)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = breaker.Execute(ctx, br, fn)
		}
	})
}

func BenchmarkGobreakerClosedSuccessParallel(b *testing.B) {
	cb := benchTheirs()
	fn := func() (int, error) { return 1, nil }
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_, _ = cb.Execute(fn)
		}
	})
}

func TestHotPathsDoNotAllocate(t *testing.T) {
	br, _ := breaker.New(breaker.Config{}, nil)
	ctx := context.Background()
	fn := func(context.Context) (int, error) { return 1, nil }
	if n := testing.AllocsPerRun(1000, func() { _, _ = breaker.Execute(ctx, br, fn) }); n != 0 {
		t.Errorf("closed success allocates %.1f per call", n)
	}
	br.Trip(0, "test")
	if n := testing.AllocsPerRun(1000, func() { _, _ = breaker.Execute(ctx, br, fn) }); n != 0 {
		t.Errorf("open reject allocates %.1f per call", n)
	}
}
