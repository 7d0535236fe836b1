package boot

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
)

func okStep(name string, log *[]string) Step {
	return Step{Name: name, Fatal: true, Run: func(ctx context.Context) (string, error) {
		*log = append(*log, name)
		return name + " done", nil
	}}
}

func TestRunInOrder(t *testing.T) {
	var ran []string
	steps := []Step{okStep("a", &ran), okStep("b", &ran), okStep("c", &ran)}
	var seen []string
	rep, err := New(Config{OnStep: func(r StepResult) { seen = append(seen, r.Name+":"+string(r.Outcome)) }}, nil).Run(context.Background(), steps)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if got := strings.Join(ran, ","); got != "a,b,c" {
		t.Fatalf("ran %s, want a,b,c", got)
	}
	if got := strings.Join(seen, ","); got != "a:ok,b:ok,c:ok" {
		t.Fatalf("OnStep saw %s", got)
	}
	if len(rep.Steps) != 3 || rep.Degraded || rep.FailedStep != "" {
		t.Fatalf("report %+v", rep)
	}
	for i, s := range rep.Steps {
		if s.Name != ran[i] || s.Outcome != OK || s.Detail != ran[i]+" done" {
			t.Fatalf("step %d = %+v", i, s)
		}
	}
	if r, ok := rep.Step("b"); !ok || r.Name != "b" {
		t.Fatalf("Step(b) = %+v, %v", r, ok)
	}
	if _, ok := rep.Step("zzz"); ok {
		t.Fatal("Step(zzz) found")
	}
}

func TestDurationsMeasured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sleep := func(d time.Duration) Step {
			return Step{Name: d.String(), Run: func(ctx context.Context) (string, error) {
				time.Sleep(d)
				return "", nil
			}}
		}
		rep, err := New(Config{}, nil).Run(context.Background(), []Step{sleep(1500 * time.Millisecond), sleep(250 * time.Millisecond)})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Steps[0].Duration != 1500*time.Millisecond || rep.Steps[1].Duration != 250*time.Millisecond {
			t.Fatalf("durations %v, %v", rep.Steps[0].Duration, rep.Steps[1].Duration)
		}
		if rep.Duration != 1750*time.Millisecond {
			t.Fatalf("total %v, want 1.75s", rep.Duration)
		}
		if !rep.Steps[1].Started.Equal(rep.Steps[0].Started.Add(1500 * time.Millisecond)) {
			t.Fatalf("second step started at %v, first at %v", rep.Steps[1].Started, rep.Steps[0].Started)
		}
	})
}

func TestStepTimeoutFatal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var ran []string
		steps := []Step{
			{Name: "hang", Timeout: 2 * time.Second, Fatal: true, Run: func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", ctx.Err()
			}},
			okStep("after", &ran),
		}
		start := time.Now()
		rep, err := New(Config{}, nil).Run(context.Background(), steps)
		var se *StepError
		if !errors.As(err, &se) || se.Step != "hang" {
			t.Fatalf("err = %v, want a StepError for hang", err)
		}
		if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "timed out after 2s") {
			t.Fatalf("err = %v, want a timeout naming 2s", err)
		}
		if time.Since(start) != 2*time.Second || rep.Steps[0].Duration != 2*time.Second {
			t.Fatalf("took %v (step %v), want exactly 2s", time.Since(start), rep.Steps[0].Duration)
		}
		if len(ran) != 0 {
			t.Fatalf("a step after the fatal failure ran: %v", ran)
		}
		if rep.FailedStep != "hang" || rep.Steps[0].Outcome != Failed || rep.Steps[1].Outcome != Skipped {
			t.Fatalf("report %+v", rep)
		}
		if !strings.Contains(rep.Steps[1].Detail, `"hang" failed`) {
			t.Fatalf("skipped detail %q", rep.Steps[1].Detail)
		}
	})
}

func TestDefaultTimeoutAppliesAndIgnoringStepIsAbandoned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		release := make(chan struct{})
		steps := []Step{{Name: "deaf", Run: func(ctx context.Context) (string, error) {
			<-release // ignores ctx
			return "", nil
		}}}
		rep, err := New(Config{DefaultStepTimeout: 3 * time.Second}, nil).Run(context.Background(), steps)
		if err != nil {
			t.Fatalf("non-fatal step: Run returned %v", err)
		}
		if rep.Steps[0].Outcome != Degraded || rep.Steps[0].Duration != 3*time.Second || !rep.Degraded {
			t.Fatalf("report %+v", rep)
		}
		close(release)
	})
}

func TestDegradeContinues(t *testing.T) {
	var ran []string
	steps := []Step{
		{Name: "flaky", Run: func(ctx context.Context) (string, error) { return "tried", errors.New("boom") }},
		okStep("next", &ran),
	}
	rep, err := New(Config{}, nil).Run(context.Background(), steps)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !rep.Degraded || rep.Steps[0].Outcome != Degraded || rep.Steps[0].Error != "boom" || rep.Steps[0].Detail != "tried" {
		t.Fatalf("report %+v", rep)
	}
	if len(ran) != 1 || rep.Steps[1].Outcome != OK {
		t.Fatalf("next step did not run: %+v", rep)
	}
}

func TestFatalKeepsCode(t *testing.T) {
	steps := []Step{{Name: "redis", Fatal: true, Run: func(ctx context.Context) (string, error) {
		return "", talos.E(talos.CodeRedis, "test", "Redis connection failed after 10 attempts", nil)
	}}}
	_, err := New(Config{}, nil).Run(context.Background(), steps)
	if !errors.Is(err, talos.ErrRedis) || talos.CodeOf(err) != talos.CodeRedis {
		t.Fatalf("err = %v, want T001 kept", err)
	}
	if !strings.Contains(err.Error(), `boot step "redis" failed`) {
		t.Fatalf("message %q does not name the step", err)
	}
}

func TestWarnAndSkip(t *testing.T) {
	steps := []Step{
		{Name: "warn", Fatal: true, Run: func(ctx context.Context) (string, error) {
			return "answers", Warn(errors.New("CONFIG renamed"))
		}},
		{Name: "skip", Fatal: true, Run: func(ctx context.Context) (string, error) {
			return "disabled", ErrSkip
		}},
		{Name: "nilrun", Run: nil},
		{Name: "panics", Run: func(ctx context.Context) (string, error) { panic("oops") }},
	}
	rep, err := New(Config{}, nil).Run(context.Background(), steps)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []Outcome{Degraded, Skipped, Degraded, Degraded}
	for i, w := range want {
		if rep.Steps[i].Outcome != w {
			t.Fatalf("step %s outcome %s, want %s", rep.Steps[i].Name, rep.Steps[i].Outcome, w)
		}
	}
	if rep.Steps[1].Error != "" || rep.Steps[1].Detail != "disabled" {
		t.Fatalf("skip %+v", rep.Steps[1])
	}
	if !strings.Contains(rep.Steps[3].Error, "panicked: oops") {
		t.Fatalf("panic result %+v", rep.Steps[3])
	}
	if Warn(nil) != nil || IsWarning(errors.New("x")) || !IsWarning(Warn(errors.New("x"))) {
		t.Fatal("Warn/IsWarning")
	}
}

func TestCancelStopsBoot(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		var ran []string
		steps := []Step{
			{Name: "slow", Fatal: true, Run: func(ctx context.Context) (string, error) {
				<-ctx.Done()
				return "", ctx.Err()
			}},
			okStep("never", &ran),
		}
		go func() {
			time.Sleep(time.Second)
			cancel()
		}()
		rep, err := New(Config{}, nil).Run(ctx, steps)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if rep.FailedStep != "" || rep.Steps[1].Outcome != Skipped || len(ran) != 0 {
			t.Fatalf("report %+v", rep)
		}
	})
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func TestBudgetOverrunLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var buf syncBuf
		log := slog.New(slog.NewTextHandler(&buf, nil))
		steps := []Step{{Name: "long", Run: func(ctx context.Context) (string, error) {
			time.Sleep(2 * time.Second)
			return "", nil
		}}}
		if _, err := New(Config{Budget: time.Second}, log).Run(context.Background(), steps); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), "overran its budget") {
			t.Fatalf("log has no overrun warning:\n%s", buf.String())
		}
		buf = syncBuf{}
		if _, err := New(Config{Budget: 5 * time.Second}, log).Run(context.Background(), steps); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(buf.String(), "overran") {
			t.Fatal("overrun logged within budget")
		}
	})
}

// TestSlowToStopStepFinishesBeforeRun: a step that honours its context but
// needs a moment to return is waited for (up to AbandonGrace), so what it
// did happens before Run returns (the race detector checks the read below),
// and it still counts as timed out.
func TestSlowToStopStepFinishesBeforeRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var effect string
		steps := []Step{{Name: "slow-stop", Timeout: 2 * time.Second, Fatal: true, Run: func(ctx context.Context) (string, error) {
			<-ctx.Done()
			time.Sleep(AbandonGrace / 2)
			effect = "cleaned up"
			return "stopped", ctx.Err()
		}}}
		rep, err := New(Config{}, nil).Run(context.Background(), steps)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the timeout", err)
		}
		if effect != "cleaned up" {
			t.Fatal("Run returned before the step did")
		}
		if rep.Steps[0].Outcome != Failed || rep.Steps[0].Duration != 2*time.Second {
			t.Fatalf("report %+v", rep.Steps[0])
		}
	})
}

// TestStepErrorsRedactURLCredentials pins that a step's detail and error,
// as reported, logged and returned, never carry a URL's credentials (the
// ready marker and stderr are written from them).
func TestStepErrorsRedactURLCredentials(t *testing.T) {
	var logBuf strings.Builder
	log := slog.New(slog.NewTextHandler(&logBuf, nil))
	steps := []Step{
		{Name: "chroma", Run: func(ctx context.Context) (string, error) {
			return "at http://h/?api_key=s3cretA", errors.New(`Get "http://h/?token=s3cretB": refused`)
		}},
		{Name: "redis", Fatal: true, Run: func(ctx context.Context) (string, error) {
			return "", errors.New("redis://u:s3cretC@h:1/0 did not answer")
		}},
	}
	rep, err := New(Config{}, log).Run(context.Background(), steps)
	var all strings.Builder
	for _, s := range rep.Steps {
		all.WriteString(s.Detail + s.Error)
	}
	r := NewReady(rep, "v", "")
	for _, s := range r.Steps {
		all.WriteString(s.Detail + s.Error)
	}
	all.WriteString(err.Error() + logBuf.String())
	if strings.Contains(all.String(), "s3cret") {
		t.Fatalf("credentials leaked: %s", all.String())
	}
	if !errors.Is(err, err.(*StepError).Err) {
		t.Fatal("StepError no longer unwraps")
	}
}
