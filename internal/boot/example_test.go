package boot_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/talos-ironclad/talos/internal/boot"
)

func Example() {
	steps := []boot.Step{
		{Name: "config", Fatal: true, Run: func(ctx context.Context) (string, error) {
			return "49 variables valid", nil
		}},
		{Name: "redis", Fatal: true, Run: func(ctx context.Context) (string, error) {
			return "not configured, using in-memory cache", nil
		}},
		{Name: "ollama", Run: func(ctx context.Context) (string, error) {
			return "", errors.New("connection refused") // not fatal: degrade
		}},
		{Name: "socket-proxy", Fatal: true, Run: func(ctx context.Context) (string, error) {
			return "SOCKET_PROXY_ENABLED=false", boot.ErrSkip
		}},
	}
	rep, err := boot.New(boot.Config{}, nil).Run(context.Background(), steps)
	fmt.Println("error:", err)
	fmt.Println("degraded:", rep.Degraded)
	for _, s := range rep.Steps {
		fmt.Printf("%-12s %-8s %s%s\n", s.Name, s.Outcome, s.Detail, s.Error)
	}
	// Output:
	// error: <nil>
	// degraded: true
	// config       ok       49 variables valid
	// redis        ok       not configured, using in-memory cache
	// ollama       degraded connection refused
	// socket-proxy skipped  SOCKET_PROXY_ENABLED=false
}

func ExampleRunner_Run_fatal() {
	steps := []boot.Step{
		{Name: "postgres", Fatal: true, Run: func(ctx context.Context) (string, error) {
			return "", errors.New("connection refused")
		}},
		{Name: "ready", Run: func(ctx context.Context) (string, error) { return "written", nil }},
	}
	rep, err := boot.New(boot.Config{}, nil).Run(context.Background(), steps)
	var se *boot.StepError
	fmt.Println(errors.As(err, &se), se.Step, rep.FailedStep)
	fmt.Println(rep.Steps[1].Outcome, rep.Steps[1].Detail)
	// Output:
	// true postgres postgres
	// skipped not run: step "postgres" failed
}
