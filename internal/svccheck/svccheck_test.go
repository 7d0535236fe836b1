package svccheck_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/svccheck"
	"github.com/talos-ironclad/talos/internal/svccheck/svcchecktest"
	"github.com/talos-ironclad/talos/internal/testenv"
)

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func closedPort(t *testing.T) int { return svcchecktest.FreePort(t) }

func TestRedisBadURL(t *testing.T) {
	_, err := svccheck.NewRedis("http://user:hunter2@x")
	if !errors.Is(err, talos.ErrConfigInvalid) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("err = %v", err)
	}
}

func TestRedisDownIsT001(t *testing.T) {
	r, err := svccheck.NewRedis(fmt.Sprintf("redis://127.0.0.1:%d/0", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	start := time.Now()
	err = r.Ping(ctx(t))
	if !errors.Is(err, talos.ErrRedis) || !strings.Contains(err.Error(), "did not answer PING") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > time.Second {
		t.Fatalf("a refused connection took %v", time.Since(start))
	}
}

// A private redis-server: ping, probe, memory policy (check and apply),
// then the server dies and comes back on the same port, and the same
// prober follows it without being recreated.
func TestRedisPrivateServerDownAndBack(t *testing.T) {
	srv := svcchecktest.StartRedis(t)
	r, err := svccheck.NewRedis(srv.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := ctx(t)
	if err := r.Ping(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Probe(c); err != nil {
		t.Fatal(err)
	}
	// redis-server's default policy is noeviction: the check reports it.
	desc, err := r.CheckPolicy(c, "allkeys-lru")
	if !errors.Is(err, talos.ErrRedis) || !strings.Contains(err.Error(), `"noeviction"`) || !strings.Contains(desc, "noeviction") {
		t.Fatalf("CheckPolicy = %q, %v", desc, err)
	}
	m, err := r.ApplyMemory(c, "256mb", "allkeys-lru")
	if err != nil {
		t.Fatal(err)
	}
	if m.Policy != "allkeys-lru" || m.MaxMemory != 256<<20 {
		t.Fatalf("after apply: %+v", m)
	}
	if desc, err := r.CheckPolicy(c, ""); err != nil || desc != "maxmemory-policy allkeys-lru, maxmemory 256mb" {
		t.Fatalf("CheckPolicy after apply = %q, %v", desc, err)
	}
	if _, err := r.ApplyMemory(c, "", "lru-please"); !errors.Is(err, talos.ErrEnvInvalid) {
		t.Fatalf("bad policy: %v", err)
	}

	srv.Stop()
	if err := r.Ping(c); !errors.Is(err, talos.ErrRedis) {
		t.Fatalf("Ping with the server down: %v", err)
	}
	srv.Start()
	if err := r.Ping(c); err != nil {
		t.Fatalf("Ping after the server came back: %v", err)
	}
}

func TestRedisHarness(t *testing.T) {
	url := testenv.RedisURL(t)
	r, err := svccheck.NewRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	c := ctx(t)
	if err := r.Ping(c); err != nil {
		t.Fatal(err)
	}
	if err := r.Probe(c); err != nil {
		t.Fatal(err)
	}
	// Read only: the harness's Redis is shared, never CONFIG SET it.
	m, err := r.Memory(c)
	if err != nil || m.Policy == "" {
		t.Fatalf("Memory = %+v, %v", m, err)
	}
}

func TestPostgres(t *testing.T) {
	c := ctx(t)
	if _, err := svccheck.PingPostgres(c, "postgres://u:hunter2@127.0.0.1:%zz/db"); !errors.Is(err, talos.ErrConfigInvalid) || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("bad URL: %v", err)
	}
	down := fmt.Sprintf("postgres://talos:pw@127.0.0.1:%d/talos?connect_timeout=2", closedPort(t))
	if _, err := svccheck.PingPostgres(c, down); !errors.Is(err, talos.ErrPostgres) || strings.Contains(err.Error(), ":pw@") {
		t.Fatalf("closed port: %v", err)
	}
}

func TestPostgresHarness(t *testing.T) {
	url := testenv.PostgresURL(t)
	v, err := svccheck.PingPostgres(ctx(t), url)
	if err != nil {
		t.Fatal(err)
	}
	if v == "" {
		t.Fatal("no server version")
	}
	t.Logf("PostgreSQL %s", v)
}

func TestChromaFake(t *testing.T) {
	var path string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path = r.URL.Path
		fmt.Fprint(w, `{"nanosecond heartbeat": 1732380000000000000}`)
	}))
	defer ok.Close()
	if err := svccheck.ChromaHeartbeat(ctx(t), nil, ok.URL+"/"); err != nil {
		t.Fatal(err)
	}
	if path != "/api/v2/heartbeat" {
		t.Fatalf("asked %s", path)
	}
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusGone)
		fmt.Fprint(w, `{"error":"The v1 API is deprecated. Please use /v2 apis"}`)
	}))
	defer gone.Close()
	err := svccheck.ChromaHeartbeat(ctx(t), nil, gone.URL)
	if !errors.Is(err, talos.ErrChroma) || !strings.Contains(err.Error(), "HTTP 410") {
		t.Fatalf("410: %v", err)
	}
	notChroma := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{}`) }))
	defer notChroma.Close()
	if err := svccheck.ChromaHeartbeat(ctx(t), nil, notChroma.URL); !errors.Is(err, talos.ErrChroma) {
		t.Fatalf("{}: %v", err)
	}
	if err := svccheck.ChromaHeartbeat(ctx(t), nil, "ftp://x"); !errors.Is(err, talos.ErrChroma) {
		t.Fatalf("ftp: %v", err)
	}
	if err := svccheck.ChromaHeartbeat(ctx(t), nil, fmt.Sprintf("http://127.0.0.1:%d", closedPort(t))); !errors.Is(err, talos.ErrChroma) {
		t.Fatalf("closed: %v", err)
	}
}

func TestChromaHarness(t *testing.T) {
	if err := svccheck.ChromaHeartbeat(ctx(t), nil, testenv.ChromaURL(t)); err != nil {
		t.Fatal(err)
	}
}

func TestOllamaFake(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/version" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, `{"version":"0.6.5"}`)
	}))
	defer srv.Close()
	v, err := svccheck.OllamaVersion(ctx(t), nil, srv.URL)
	if err != nil || v != "0.6.5" {
		t.Fatalf("%q %v", v, err)
	}
	if _, err := svccheck.OllamaVersion(ctx(t), nil, fmt.Sprintf("http://127.0.0.1:%d", closedPort(t))); !errors.Is(err, talos.ErrLocalModelLoad) {
		t.Fatalf("closed: %v", err)
	}
}

// A fake engine that speaks API 1.41 (like Debian's dockerd 20.10): the
// client must negotiate down from its own newer default.
func TestDockerNegotiatesWithOldEngine(t *testing.T) {
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		paths = append(paths, r.Method+" "+r.URL.Path)
		if strings.HasSuffix(r.URL.Path, "/_ping") {
			w.Header().Set("Api-Version", "1.41")
			w.Header().Set("Ostype", "linux")
			fmt.Fprint(w, "OK")
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	d, err := svccheck.NewDocker("tcp://" + strings.TrimPrefix(srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	api, err := d.Ping(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if api != "1.41" {
		t.Fatalf("API %q, want 1.41 (paths %v)", api, paths)
	}
}

func TestDockerDown(t *testing.T) {
	d, err := svccheck.NewDocker(fmt.Sprintf("tcp://127.0.0.1:%d", closedPort(t)))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if _, err := d.Ping(ctx(t)); !errors.Is(err, talos.ErrDocker) {
		t.Fatalf("err = %v", err)
	}
	if _, err := svccheck.NewDocker("bogus://x"); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Fatalf("bogus host: %v", err)
	}
}

func TestDockerHarness(t *testing.T) {
	d, err := svccheck.NewDocker(testenv.DockerHost(t))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	api, err := d.Ping(ctx(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Docker API %s", api)
}

func TestRedisLogger(t *testing.T) {
	var buf strings.Builder
	l := svccheck.RedisLogger{Log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))}
	l.Printf(context.Background(), "failed to dial after %d attempts", 1)
	if !strings.Contains(buf.String(), "level=DEBUG") || !strings.Contains(buf.String(), "go-redis: failed to dial after 1 attempts") {
		t.Fatalf("log: %s", buf.String())
	}
	svccheck.RedisLogger{}.Printf(context.Background(), "no logger: no panic")
}

// A health check pointed at the harness's real Redis, then at a closed
// port, then back: healthy → degraded → healthy, with no restart of the
// checker (the shared Redis itself is never stopped).
func TestHarnessRedisCheckFlips(t *testing.T) {
	live := testenv.RedisURL(t)
	closed := fmt.Sprintf("redis://127.0.0.1:%d/0", closedPort(t))
	probers := map[string]*svccheck.Redis{}
	for _, u := range []string{live, closed} {
		r, err := svccheck.NewRedis(u)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		probers[u] = r
	}
	var current atomic.Pointer[svccheck.Redis]
	current.Store(probers[live])
	checker, err := health.New(health.Config{CacheTTL: time.Nanosecond}, nil, health.Check{Name: "redis", Func: func(ctx context.Context) (string, error) {
		r := current.Load()
		return "PONG from " + r.Addr(), r.Ping(ctx)
	}})
	if err != nil {
		t.Fatal(err)
	}
	for i, step := range []struct {
		url  string
		want health.Status
	}{{live, health.Healthy}, {closed, health.Degraded}, {live, health.Healthy}} {
		current.Store(probers[step.url])
		rep, err := checker.Refresh(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		if rep.Status != step.want {
			t.Fatalf("step %d (%s): %s, want %s: %+v", i, redact.URL(step.url), rep.Status, step.want, rep.Checks["redis"])
		}
		if step.want == health.Degraded && !strings.Contains(rep.Checks["redis"].Detail, "T001") {
			t.Fatalf("detail %q", rep.Checks["redis"].Detail)
		}
	}
}

// Every failure message names the Talos variable to check, never the
// spec's unprefixed names (REDIS_URL, CHROMA_URL, DOCKER_HOST).
func TestFailureMessagesNameTalosVariables(t *testing.T) {
	port := closedPort(t)
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	r, err := svccheck.NewRedis(fmt.Sprintf("redis://127.0.0.1:%d/0", port))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	dk, err := svccheck.NewDocker(fmt.Sprintf("tcp://127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer dk.Close()
	px, err := svccheck.NewDockerFor(fmt.Sprintf("tcp://127.0.0.1:%d", port), "SOCKET_PROXY_URL")
	if err != nil {
		t.Fatal(err)
	}
	defer px.Close()
	_, badRedis := svccheck.NewRedis("nope://x")
	_, badDocker := svccheck.NewDocker("ftp://x")
	_, pgErr := svccheck.PingPostgres(ctx(t), fmt.Sprintf("postgres://u@127.0.0.1:%d/db?sslmode=disable", port))
	_, ollErr := svccheck.OllamaVersion(ctx(t), nil, base)
	_, dkErr := dk.Ping(ctx(t))
	_, pxErr := px.Ping(ctx(t))
	for want, err := range map[string]error{
		"TALOS_REDIS_URL is right":   r.Ping(ctx(t)),
		"TALOS_REDIS_URL \"":         badRedis,
		"TALOS_CHROMA_URL is right":  svccheck.ChromaHeartbeat(ctx(t), nil, base),
		"TALOS_POSTGRES_URL":         pgErr,
		"TALOS_OLLAMA_URL is right":  ollErr,
		"TALOS_DOCKER_HOST is right": dkErr,
		"TALOS_DOCKER_HOST \"":       badDocker,
		"SOCKET_PROXY_URL is right":  pxErr,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}
