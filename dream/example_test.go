package dream_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/talos-ironclad/talos/dream"
)

func Example() {
	dir, err := os.MkdirTemp("", "dream-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)

	s, err := dream.New(dream.Config{StateDir: dir}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	// Each owner registers its phase; zero timeouts take the spec's.
	_ = s.Register(dream.Phase{Name: dream.PhaseRedisFlush, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return dream.PhaseResult{Counters: map[string]int64{"keys_deleted": 120}}, nil
	}})
	_ = s.Register(dream.Phase{Name: dream.PhaseVectorPrune, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return dream.PhaseResult{Skipped: "1200 memories, under the 90000 trigger"}, nil
	}})
	_ = s.Register(dream.Phase{Name: dream.PhaseHealthReport, Run: func(ctx context.Context) (dream.PhaseResult, error) {
		return dream.PhaseResult{}, errors.New("disk probe failed")
	}})

	rep, err := s.RunNow(context.Background(), "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, p := range rep.Phases {
		fmt.Println(strings.TrimSpace(fmt.Sprintln(p.Name, p.Status, p.Counters, p.Reason+p.Error)))
	}
	fmt.Println(rep.Outcome)
	next, _, _ := strings.Cut(rep.Next, " at ")
	fmt.Println(next) // Run retries it 300 s after the cycle ended
	// Output:
	// redis_flush ok map[keys_deleted:120]
	// vector_prune skipped map[] 1200 memories, under the 90000 trigger
	// health_report failed map[] disk probe failed
	// partial
	// retry 1 of 3 of health_report
}

func ExampleParseSchedule() {
	paris := time.FixedZone("CET", 3600)
	s, err := dream.ParseSchedule(dream.DefaultSchedule, paris)
	if err != nil {
		fmt.Println(err)
		return
	}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	fmt.Println(s.Next(now).UTC())

	_, err = dream.ParseSchedule("0 25 * * *", paris)
	fmt.Println(err)
	// Output:
	// 2026-12-08 03:00:00 +0000 UTC
	// T010 CONFIG_INVALID: dream.ParseSchedule: cron expression "0 25 * * *" is invalid: hour field "25": value "25": want a number from 0 to 23
}
