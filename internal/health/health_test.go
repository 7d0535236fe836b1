package health

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos/internal/testenv"
)

// flip is a fake dependency whose state the test sets.
type flip struct {
	mu    sync.Mutex
	err   error
	calls atomic.Int32
}

func (f *flip) set(err error) { f.mu.Lock(); f.err = err; f.mu.Unlock() }
func (f *flip) check(ctx context.Context) (string, error) {
	f.calls.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	return "fake", f.err
}

func get(t *testing.T, h http.Handler, path string) (*httptest.ResponseRecorder, Report) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	var rep Report
	if path == "/health" {
		if err := json.Unmarshal(rec.Body.Bytes(), &rep); err != nil {
			t.Fatalf("GET %s: body is not JSON: %v\n%s", path, err, rec.Body)
		}
	}
	return rec, rep
}

func newTestServer(t *testing.T, cfg Config, checks ...Check) (*Checker, *Metrics, http.Handler) {
	t.Helper()
	c, err := New(cfg, nil, checks...)
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics(cfg.Version)
	c.AddObserver(m)
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, c, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c, m, s.Handler()
}

func TestTransitionsWithoutRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		redis, home := &flip{}, &flip{}
		_, _, h := newTestServer(t, Config{Version: "1.0.0", CacheTTL: time.Second},
			Check{Name: "redis", Func: redis.check},
			Check{Name: "home", Critical: true, Func: home.check},
		)
		step := func(want Status, wantCode int, wantRedis CheckStatus) {
			t.Helper()
			time.Sleep(time.Second) // let the cache expire
			rec, rep := get(t, h, "/health")
			if rec.Code != wantCode || rep.Status != want || rep.Checks["redis"].Status != wantRedis {
				t.Fatalf("got %d %s (redis %s), want %d %s (redis %s)\n%s", rec.Code, rep.Status, rep.Checks["redis"].Status, wantCode, want, wantRedis, rec.Body)
			}
		}
		step(Healthy, 200, StatusOK)
		redis.set(errors.New("connection refused")) // goes down
		step(Degraded, 200, StatusFail)
		redis.set(nil) // comes back
		step(Healthy, 200, StatusOK)
		home.set(errors.New("read-only file system")) // critical failure
		step(Unhealthy, 503, StatusOK)
		home.set(Warnf("disk 93%% full")) // a warning, even critical, only degrades
		step(Degraded, 200, StatusOK)
		home.set(nil)
		step(Healthy, 200, StatusOK)
	})
}

func TestReportShape(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _, h := newTestServer(t, Config{Version: "9.9.9"},
			Check{Name: "redis", Func: func(ctx context.Context) (string, error) { return "embedded in-memory", nil }},
			Check{Name: "chroma", Func: func(ctx context.Context) (string, error) { return "", errors.New("refused") }},
		)
		time.Sleep(3 * time.Second)
		rec, _ := get(t, h, "/health")
		var raw map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"status", "version", "uptime_s", "checks"} {
			if _, ok := raw[k]; !ok {
				t.Fatalf("/health lacks %q: %s", k, rec.Body)
			}
		}
		if raw["version"] != "9.9.9" || raw["uptime_s"].(float64) < 3 {
			t.Fatalf("version/uptime wrong: %s", rec.Body)
		}
		checks := raw["checks"].(map[string]any)
		redis := checks["redis"].(map[string]any)
		for _, k := range []string{"status", "latency_ms", "detail"} {
			if _, ok := redis[k]; !ok {
				t.Fatalf("check lacks %q: %v", k, redis)
			}
		}
		if redis["detail"] != "embedded in-memory" || checks["chroma"].(map[string]any)["detail"] != "refused" {
			t.Fatalf("details: %v", checks)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
		if got := strings.Join(c.Names(), ","); got != "chroma,redis" {
			t.Fatalf("Names = %s", got)
		}
	})
}

func TestChecksRunConcurrentlyWithOwnTimeouts(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := func(d time.Duration) func(ctx context.Context) (string, error) {
			return func(ctx context.Context) (string, error) {
				select {
				case <-time.After(d):
					return "slow ok", nil
				case <-ctx.Done():
					return "", ctx.Err()
				}
			}
		}
		c, err := New(Config{}, nil,
			Check{Name: "a", Timeout: 5 * time.Second, Func: slow(time.Second)},
			Check{Name: "b", Timeout: 5 * time.Second, Func: slow(time.Second)},
			Check{Name: "c", Timeout: 5 * time.Second, Func: slow(time.Second)},
			Check{Name: "stuck", Timeout: 1500 * time.Millisecond, Func: slow(time.Hour)},
		)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		rep, err := c.Report(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if el := time.Since(start); el != 1500*time.Millisecond {
			t.Fatalf("evaluation took %v, want 1.5s (concurrent, bounded by the stuck check's timeout)", el)
		}
		st := rep.Checks["stuck"]
		if st.Status != StatusFail || !strings.Contains(st.Detail, "no answer within 1.5s") || st.LatencyMS != 1500 {
			t.Fatalf("stuck = %+v", st)
		}
		if rep.Checks["a"].Status != StatusOK || rep.Checks["a"].LatencyMS != 1000 {
			t.Fatalf("a = %+v", rep.Checks["a"])
		}
		if rep.Status != Degraded {
			t.Fatalf("status %s", rep.Status)
		}
	})
}

func TestCacheAndSingleFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flip{}
		c, err := New(Config{CacheTTL: 2 * time.Second}, nil, Check{Name: "x", Func: func(ctx context.Context) (string, error) {
			time.Sleep(100 * time.Millisecond)
			return f.check(ctx)
		}})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() { _, _ = c.Report(context.Background()) })
		}
		wg.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("20 concurrent reports ran the check %d times, want 1", n)
		}
		time.Sleep(time.Second)
		_, _ = c.Report(context.Background())
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("within the TTL the check ran again (%d)", n)
		}
		time.Sleep(time.Second)
		_, _ = c.Report(context.Background())
		if n := f.calls.Load(); n != 2 {
			t.Fatalf("after the TTL the check ran %d times, want 2", n)
		}
		_, _ = c.Refresh(context.Background())
		if n := f.calls.Load(); n != 3 {
			t.Fatalf("Refresh did not re-run the check (%d)", n)
		}
	})
}

func TestReportRespectsCallerContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c, _ := New(Config{}, nil, Check{Name: "slow", Timeout: 10 * time.Second, Func: func(ctx context.Context) (string, error) {
			<-ctx.Done()
			return "", ctx.Err()
		}})
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		rep, err := c.Report(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || rep.Status != Unhealthy {
			t.Fatalf("rep %+v err %v", rep, err)
		}
		time.Sleep(10 * time.Second) // let the detached evaluation finish
		rep, err = c.Report(context.Background())
		if err != nil || rep.Checks["slow"].Status != StatusFail {
			t.Fatalf("after: %+v %v", rep, err)
		}
	})
}

// Close waits for an evaluation a caller gave up on, and for a check
// function that outlived its timeout, so a daemon's Stop can release what
// the checks use (its home directory, its clients) only when no check is
// still running; after Close nothing evaluates again.
func TestCloseWaitsForChecksInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		var calls, finished atomic.Int32
		c, _ := New(Config{CacheTTL: time.Nanosecond}, nil, Check{Name: "stuck", Timeout: time.Second, Func: func(ctx context.Context) (string, error) {
			calls.Add(1)
			<-release // ignores ctx, as a blocking file system call would
			finished.Add(1)
			return "done", nil
		}})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if _, err := c.Report(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Report: %v, want the caller's deadline", err)
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close(context.Background()) }()
		time.Sleep(5 * time.Second) // well past the check's own timeout
		synctest.Wait()
		select {
		case err := <-closed:
			t.Fatalf("Close returned (%v) while a check function was still running", err)
		default:
		}
		close(release)
		if err := <-closed; err != nil {
			t.Fatalf("Close: %v", err)
		}
		if finished.Load() != 1 {
			t.Fatal("Close returned before the check function did")
		}
		rep, err := c.Report(context.Background())
		if !errors.Is(err, ErrClosed) || rep.Checks["stuck"].Status != StatusFail {
			t.Fatalf("Report after Close: %+v %v, want the last result (timed out) and ErrClosed", rep, err)
		}
		if _, err := c.Refresh(context.Background()); !errors.Is(err, ErrClosed) {
			t.Fatalf("Refresh after Close: %v", err)
		}
		done := make(chan struct{})
		go func() { c.Run(context.Background()); close(done) }()
		<-done // Run returns at once on a closed checker
		if n := calls.Load(); n != 1 {
			t.Fatalf("%d evaluations, want 1: nothing may run after Close", n)
		}
		if err := c.Close(context.Background()); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}

// Close gives up when its context ends, leaving a stuck check behind.
func TestCloseHonoursItsContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		c, _ := New(Config{}, nil, Check{Name: "stuck", Func: func(ctx context.Context) (string, error) {
			<-release
			return "", nil
		}})
		rctx, rcancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer rcancel()
		_, _ = c.Report(rctx)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := c.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Close: %v, want its context's deadline", err)
		}
		close(release)
	})
}

func TestBackgroundRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flip{}
		c, _ := New(Config{RefreshInterval: 5 * time.Second}, nil, Check{Name: "x", Func: f.check})
		m := NewMetrics("v")
		c.AddObserver(m)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { c.Run(ctx); close(done) }()
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("Run did not evaluate at once (%d)", n)
		}
		f.set(errors.New("down"))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		if n := f.calls.Load(); n != 2 {
			t.Fatalf("after one interval: %d evaluations, want 2", n)
		}
		if got := gauge(t, m, MetricCheckUp, "x"); got != 0 {
			t.Fatalf("up gauge %v after failure, want 0", got)
		}
		cancel()
		<-done
	})
}

func TestReadyEndpointAndMetrics(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := &flip{}
		c, m, h := newTestServer(t, Config{Version: "1"}, Check{Name: "redis", Func: f.check})
		rec, _ := get(t, h, "/ready")
		if rec.Code != 503 || !strings.Contains(rec.Body.String(), `"ready": false`) {
			t.Fatalf("/ready before: %d %s", rec.Code, rec.Body)
		}
		c.SetReady(true)
		rec, _ = get(t, h, "/ready")
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"ready": true`) {
			t.Fatalf("/ready after: %d %s", rec.Code, rec.Body)
		}
		f.set(errors.New("down"))
		rec, _ = get(t, h, "/metrics")
		body := rec.Body.String()
		for _, want := range []string{
			`talos_health_check_up{check="redis"} 0`,
			`talos_health_check_status{check="redis"} 2`,
			`talos_health_status 1`,
			`talos_build_info{goversion=`,
			`go_goroutines`,
		} {
			if !strings.Contains(body, want) {
				t.Fatalf("/metrics lacks %q:\n%s", want, body)
			}
		}
		_ = m
		rec, _ = get(t, h, "/nope")
		if rec.Code != 404 {
			t.Fatalf("/nope: %d", rec.Code)
		}
		post := httptest.NewRecorder()
		h.ServeHTTP(post, httptest.NewRequest(http.MethodPost, "/health", nil))
		if post.Code != http.StatusMethodNotAllowed || post.Header().Get("Allow") == "" {
			t.Fatalf("POST /health: %d", post.Code)
		}
	})
}

func gauge(t *testing.T, m *Metrics, name, check string) float64 {
	t.Helper()
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, metric := range mf.GetMetric() {
			for _, l := range metric.GetLabel() {
				if l.GetName() == "check" && l.GetValue() == check {
					return metric.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{check=%q}", name, check)
	return 0
}

func TestNewRejectsBadChecks(t *testing.T) {
	fn := func(context.Context) (string, error) { return "", nil }
	for name, cs := range map[string][]Check{
		"empty name": {{Name: "", Func: fn}},
		"duplicate":  {{Name: "a", Func: fn}, {Name: "a", Func: fn}},
		"nil func":   {{Name: "a"}},
	} {
		if _, err := New(Config{}, nil, cs...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestCheckAddr(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:8081": true,
		"127.0.0.1:0":    true,
		"127.1.2.3:80":   true,
		"[::1]:8081":     true,
		"localhost:8081": true,
		":8081":          false,
		"0.0.0.0:8081":   false,
		"[::]:8081":      false,
		"192.168.1.5:80": false,
		"example.com:80": false,
		"127.0.0.1":      false,
		"127.0.0.1:":     false,
	} {
		err := CheckAddr(addr, false)
		if (err == nil) != ok {
			t.Errorf("CheckAddr(%q) = %v, want ok=%v", addr, err, ok)
		}
	}
	if err := CheckAddr("0.0.0.0:8081", true); err != nil {
		t.Errorf("explicitly allowed: %v", err)
	}
	if err := CheckAddr(":8081", false); err == nil || !strings.Contains(err.Error(), "every interface") {
		t.Errorf("message: %v", err)
	}
	if _, err := NewServer(ServerConfig{Addr: "0.0.0.0:8081"}, &Checker{}, nil, nil); err == nil {
		t.Error("NewServer accepted a non-loopback address")
	}
}

func TestServerListensAndShutsDown(t *testing.T) {
	c, _ := New(Config{Version: "x"}, nil, Check{Name: "ok", Func: func(context.Context) (string, error) { return "fine", nil }})
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0"}, c, NewMetrics("x"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(s.Addr(), ":0") {
		t.Fatalf("Addr %s still has port 0", s.Addr())
	}
	resp, err := http.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	var rep Report
	_ = json.NewDecoder(resp.Body).Decode(&rep)
	resp.Body.Close()
	if resp.StatusCode != 200 || rep.Status != Healthy || rep.Checks["ok"].Detail != "fine" {
		t.Fatalf("%d %+v", resp.StatusCode, rep)
	}
	// A second server on the same address fails with a clear message.
	s2, _ := NewServer(ServerConfig{Addr: s.Addr()}, c, nil, nil)
	if err := s2.Start(); err == nil || !strings.Contains(err.Error(), "cannot listen") {
		t.Fatalf("second listener: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(s.URL()); err == nil {
		t.Fatal("server still answers after Shutdown")
	}
}

func TestStatusCode(t *testing.T) {
	if StatusCode(Healthy) != 200 || StatusCode(Degraded) != 200 || StatusCode(Unhealthy) != 503 {
		t.Fatal("StatusCode mapping")
	}
}

func TestChangesAreLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf testenv.LockedBuffer
		f := &flip{}
		c, _ := New(Config{}, slog.New(slog.NewTextHandler(&buf, nil)), Check{Name: "redis", Func: f.check})
		_, _ = c.Refresh(context.Background())
		f.set(errors.New("refused"))
		_, _ = c.Refresh(context.Background())
		f.set(nil)
		_, _ = c.Refresh(context.Background())
		_, _ = c.Refresh(context.Background()) // no change: no new line
		log := buf.String()
		for _, want := range []string{
			"check=redis from=ok to=fail",
			"from=healthy to=degraded",
			"check=redis from=fail to=ok",
			"from=degraded to=healthy",
		} {
			if !strings.Contains(log, want) {
				t.Fatalf("log lacks %q:\n%s", want, log)
			}
		}
		if n := strings.Count(log, "health status changed"); n != 3 {
			t.Fatalf("%d status-change lines, want 3 (first, down, up):\n%s", n, log)
		}
	})
}

func isLoopbackForTest(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func TestServerExtraHandlers(t *testing.T) {
	c, err := New(Config{Version: "x"}, nil, Check{Name: "a", Func: func(context.Context) (string, error) { return "", nil }})
	if err != nil {
		t.Fatal(err)
	}
	extra := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "extra") })
	s, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Handlers: map[string]http.Handler{"/vram": extra}}, c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/vram", nil))
	if rec.Code != 200 || rec.Body.String() != "extra" {
		t.Fatalf("/vram: %d %q", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/health", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"checks"`) {
		t.Fatalf("/health next to an extra handler: %d %s", rec.Code, rec.Body.String())
	}
	for _, bad := range []string{"/health", "/metrics", "/ready", "/", "vram", "GET /vram"} {
		if _, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Handlers: map[string]http.Handler{bad: extra}}, c, nil, nil); err == nil {
			t.Errorf("extra handler at %q accepted", bad)
		}
	}
	if _, err := NewServer(ServerConfig{Addr: "127.0.0.1:0", Handlers: map[string]http.Handler{"/x": nil}}, c, nil, nil); err == nil {
		t.Error("nil extra handler accepted")
	}
}

// TestDetailRedactsURLCredentials pins that /health never shows the
// credentials of a URL a check's detail or error quotes.
func TestDetailRedactsURLCredentials(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		_, _, h := newTestServer(t, Config{},
			Check{Name: "chroma", Func: func(ctx context.Context) (string, error) {
				return "", errors.New(`Get "http://h:8000/api/v2/heartbeat?token=s3cretA": connection refused`)
			}},
			Check{Name: "redis", Func: func(ctx context.Context) (string, error) {
				return "PONG from redis://:s3cretB@h:6379/0", nil
			}},
		)
		time.Sleep(3 * time.Second)
		rec, _ := get(t, h, "/health")
		if body := rec.Body.String(); strings.Contains(body, "s3cret") || !strings.Contains(body, "token=\u003credacted\u003e") && !strings.Contains(body, `token=\u003credacted\u003e`) {
			t.Fatalf("/health: %s", body)
		}
	})
}
