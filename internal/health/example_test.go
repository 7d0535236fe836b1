package health_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sort"

	"github.com/talos-ironclad/talos/internal/health"
)

func Example() {
	redisUp := false
	checker, err := health.New(health.Config{Version: "4.0.0"}, nil,
		health.Check{Name: "postgres", Func: func(ctx context.Context) (string, error) {
			return "embedded SQLite", nil
		}},
		health.Check{Name: "redis", Func: func(ctx context.Context) (string, error) {
			if !redisUp {
				return "", errors.New("connection refused")
			}
			return "PONG", nil
		}},
	)
	if err != nil {
		panic(err)
	}
	srv, err := health.NewServer(health.ServerConfig{Addr: "127.0.0.1:8081"}, checker, nil, nil)
	if err != nil {
		panic(err)
	}

	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	rep, _ := checker.Report(context.Background())
	fmt.Println(rec.Code, rep.Status)
	names := make([]string, 0, len(rep.Checks))
	for n := range rep.Checks {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Println(n, rep.Checks[n].Status, rep.Checks[n].Detail)
	}

	redisUp = true // the dependency comes back: no restart needed
	rep, _ = checker.Refresh(context.Background())
	fmt.Println(rep.Status)
	// Output:
	// 200 degraded
	// postgres ok embedded SQLite
	// redis fail connection refused
	// healthy
}

func ExampleCheckAddr() {
	fmt.Println(health.CheckAddr("127.0.0.1:8081", false) == nil)
	fmt.Println(health.CheckAddr("0.0.0.0:8081", false) == nil)
	fmt.Println(health.CheckAddr("0.0.0.0:8081", true) == nil)
	// Output:
	// true
	// false
	// true
}
