package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
	"github.com/talos-ironclad/talos/orchestrator"
)

// Without Redis the tracker counts in memory: per model and UTC day, a
// seven-day history (today first), the limit refusing escalation until
// 00:00 UTC, and days older than a week forgotten.
func TestTrackerInMemoryLimitAndRollover(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr, err := orchestrator.NewTracker(orchestrator.TrackerConfig{DailyLimit: 1000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.Count(ctx, "qwen", llm.Usage{PromptTokens: 600, CompletionTokens: 100}); err != nil {
			t.Fatal(err)
		}
		if err := tr.EscalationRefusal(ctx); err != nil {
			t.Fatalf("700 of 1000: %v", err)
		}
		tr.Count(ctx, "gemini-2.5-flash", llm.Usage{PromptTokens: 250, CompletionTokens: 50})
		err = tr.EscalationRefusal(ctx)
		if !errors.Is(err, talos.ErrTokenLimit) || !strings.Contains(orchestrator.UserMessage(err), "1000 of 1000 tokens") ||
			!strings.Contains(orchestrator.UserMessage(err), "after 00:00 UTC") {
			t.Fatalf("1000 of 1000: %v", err)
		}
		s, err := tr.Summary(ctx)
		if err != nil || s.Source != orchestrator.TokenSourceMemory || s.Note != "" || len(s.History) != orchestrator.TokenDays ||
			s.Live.DailyTotal != 1000 || !s.Live.EscalationRefused || s.Live.Models["qwen"].TotalTokens != 700 ||
			s.History[0].CombinedTotal != 1000 || s.History[0].Models["gemini-2.5-flash"] != 300 || s.Session["qwen"].PromptTokens != 600 {
			t.Fatalf("summary %+v, %v", s, err)
		}
		if s.History[0].Date != "2000-01-01" || s.History[6].Date != "1999-12-26" {
			t.Fatalf("history dates %s … %s", s.History[0].Date, s.History[6].Date)
		}
		if err := tr.Count(ctx, "qwen", llm.Usage{PromptTokens: -1}); !errors.Is(err, talos.ErrInputInvalid) {
			t.Fatalf("negative count: %v", err)
		}

		// Midnight UTC: a new day, escalation allowed again.
		time.Sleep(24 * time.Hour)
		if err := tr.EscalationRefusal(ctx); err != nil {
			t.Fatalf("the next day: %v", err)
		}
		tr.Count(ctx, "qwen", llm.Usage{PromptTokens: 5})
		s, _ = tr.Summary(ctx)
		if s.Live.DailyTotal != 5 || s.History[1].CombinedTotal != 1000 || s.Session["qwen"].PromptTokens != 605 {
			t.Fatalf("the next day: %+v", s)
		}
		// A week later the first day is gone from the history and memory.
		time.Sleep(7 * 24 * time.Hour)
		tr.Count(ctx, "qwen", llm.Usage{PromptTokens: 1})
		s, _ = tr.Summary(ctx)
		for _, d := range s.History {
			if d.Date == "2000-01-01" || d.Date == "2000-01-02" {
				t.Fatalf("a day older than a week: %+v", s.History)
			}
		}
	})
	if _, err := orchestrator.NewTracker(orchestrator.TrackerConfig{DailyLimit: -1, StoreTimeout: -time.Second}, nil); err == nil ||
		!strings.Contains(err.Error(), "DailyLimit is -1") || !strings.Contains(err.Error(), "StoreTimeout is -1s") {
		t.Fatalf("bad config: %v", err)
	}
}

// Over the limit, a turn that wants to escalate stays local, is marked as a
// fallback and tells the user why; the cloud model is never called.
func TestDailyLimitRefusesEscalationButLocalAnswers(t *testing.T) {
	tr, err := orchestrator.NewTracker(orchestrator.TrackerConfig{DailyLimit: 1000}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOpts{tracker: tr})
	r.local.Push(llmtest.Reply{Text: "Partly known. [ESCALATE]", Usage: llm.Usage{PromptTokens: 400, CompletionTokens: 100}})
	r.remote.Push(llmtest.Reply{Text: "the cloud's answer", Usage: llm.Usage{PromptTokens: 400, CompletionTokens: 100}})
	rep := r.chat(t, "", "a hard question")
	if !rep.Escalated || rep.Notice != "" {
		t.Fatalf("under the limit: %+v", rep)
	}
	// 1000 tokens today: the next escalation is refused.
	r.local.Push(llmtest.Reply{Text: "Partly known. [ESCALATE]", Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 5}},
		llmtest.Reply{Text: "A plain local answer.", Usage: llm.Usage{PromptTokens: 10, CompletionTokens: 5}})
	rep = r.chat(t, rep.SessionID, "another hard question")
	if rep.Outcome != orchestrator.OutcomeAnswered || rep.Escalated || !rep.Fallback || rep.Answer != "Partly known." ||
		!strings.HasPrefix(rep.EscalationFailure, "T026") || !strings.Contains(rep.Notice, "Today's token limit is reached (1000 of 1000 tokens") ||
		len(r.remote.Calls()) != 1 {
		t.Fatalf("over the limit: %+v (cloud calls %d)", rep, len(r.remote.Calls()))
	}
	// A turn the local model answers carries no notice.
	if rep = r.chat(t, rep.SessionID, "an easy one"); rep.Answer != "A plain local answer." || rep.Notice != "" || rep.Fallback {
		t.Fatalf("local turn: %+v", rep)
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"fallback":false`) {
		t.Fatalf("reply JSON %s", b)
	}
}

// cutter is a TCP forwarder in front of the real Redis that can be cut,
// so a test sees a Redis outage without stopping the shared server.
type cutter struct {
	ln    net.Listener
	mu    sync.Mutex
	cut   bool
	conns []net.Conn
}

func newCutter(t *testing.T, target string) *cutter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &cutter{ln: ln}
	t.Cleanup(func() { ln.Close(); c.setCut(true) })
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			if c.cut {
				c.mu.Unlock()
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				c.mu.Unlock()
				in.Close()
				continue
			}
			c.conns = append(c.conns, in, out)
			c.mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	return c
}

// setCut cuts (true) or restores (false) the link; cutting closes every
// open connection.
func (c *cutter) setCut(cut bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cut = cut
	if cut {
		for _, x := range c.conns {
			x.Close()
		}
		c.conns = nil
	}
}

// Against the real Redis: counts land under the spec's keys and the
// summary reads them back (source redis); during an outage the chat still
// answers, the counts go on in memory and the summary says so; when Redis
// is back, counting there resumes.
func TestTrackerOnTheRealRedisSurvivesAnOutage(t *testing.T) {
	testenv.AwayFromUTCMidnight(t, time.Minute)
	url := testenv.RedisURL(t)
	// Database 12 is this test's own.
	opt, err := redis.ParseURL(url[:strings.LastIndex(url, "/")] + "/12")
	if err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(opt)
	defer direct.Close()
	opt, _ = redis.ParseURL(url[:strings.LastIndex(url, "/")] + "/12")
	cut := newCutter(t, opt.Addr)
	opt.Addr = cut.ln.Addr().String()
	opt.MaxRetries = -1
	rdb := redis.NewClient(opt)
	defer rdb.Close()
	ctx := context.Background()
	model := "tracker-test:" + time.Now().Format("150405.000000")
	day := time.Now().UTC().Format(time.DateOnly)
	keys := []string{"talos:tokens:" + model + ":" + day + ":prompt", "talos:tokens:" + model + ":" + day + ":completion"}
	defer direct.Del(ctx, append(keys, "talos:tokens:qwen:"+day+":prompt", "talos:tokens:qwen:"+day+":completion")...)

	tr, err := orchestrator.NewTracker(orchestrator.TrackerConfig{DailyLimit: 1 << 30, StoreTimeout: time.Second}, rdb)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, rigOpts{tracker: tr})
	r.local.Default = &llmtest.Reply{Text: "local answer", Usage: llm.Usage{PromptTokens: 30, CompletionTokens: 4}}
	// The rig's local model is named qwen; count under the test's model too.
	if err := tr.Count(ctx, model, llm.Usage{PromptTokens: 30, CompletionTokens: 4}); err != nil {
		t.Fatal(err)
	}
	if rep := r.chat(t, "", "hello"); rep.Outcome != orchestrator.OutcomeAnswered {
		t.Fatalf("%+v", rep)
	}
	if v, _ := direct.MGet(ctx, keys...).Result(); v[0] != "30" || v[1] != "4" {
		t.Fatalf("Redis holds %v", v)
	}
	if ttl := direct.TTL(ctx, keys[0]).Val(); ttl <= 6*24*time.Hour || ttl > orchestrator.TokenTTL {
		t.Fatalf("TTL %v", ttl)
	}
	s, err := tr.Summary(ctx)
	if err != nil || s.Source != orchestrator.TokenSourceRedis || s.Live.Models[model].TotalTokens != 34 || s.History[0].Models[model] != 34 {
		t.Fatalf("summary %+v, %v", s, err)
	}

	// Outage: the turn answers; the count stays in memory.
	cut.setCut(true)
	began := time.Now()
	rep := r.chat(t, "", "hello during the outage")
	if rep.Outcome != orchestrator.OutcomeAnswered || rep.Answer != "local answer" {
		t.Fatalf("during the outage: %+v", rep)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("the outage held the turn for %v", d)
	}
	if !strings.Contains(r.logs.String(), "token accounting failed") {
		t.Fatalf("the failed count was not logged:\n%s", r.logs)
	}
	tr.Count(ctx, model, llm.Usage{PromptTokens: 1})
	s, err = tr.Summary(ctx)
	if err != nil || s.Source != orchestrator.TokenSourceMemory || !strings.Contains(s.Note, "Redis does not answer") ||
		s.Live.Models[model].TotalTokens != 35 || s.Live.Models["qwen"].TotalTokens != 68 {
		t.Fatalf("summary during the outage %+v, %v", s, err)
	}
	if err := tr.EscalationRefusal(ctx); err != nil {
		t.Fatalf("the limit check during the outage: %v", err)
	}

	// Back: counts land in Redis again.
	cut.setCut(false)
	if err := tr.Count(ctx, model, llm.Usage{PromptTokens: 2}); err != nil {
		t.Fatal(err)
	}
	if v, _ := direct.Get(ctx, keys[0]).Result(); v != "32" {
		t.Fatalf("after the outage Redis holds %q", v)
	}
}
