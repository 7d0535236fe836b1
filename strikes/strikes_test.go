package strikes_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
	"unicode/utf8"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

var (
	key   = bytes.Repeat([]byte{1}, 32)
	skill = strikes.Skill{ID: "scraper", Version: "1.2.0", Hash: strikestest.Hash('a')}
)

type deps struct {
	mu  sync.Mutex
	got []strikes.Deprecation
}

func (d *deps) Deprecate(_ context.Context, dep strikes.Deprecation) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.got = append(d.got, dep)
	return nil
}

func newTracker(t *testing.T, cfg strikes.Config) (*strikes.Tracker, *strikestest.MemoryStore, *deps) {
	t.Helper()
	cfg.Key = key
	st, d := strikestest.NewMemoryStore(), &deps{}
	tr, err := strikes.New(cfg, st, d)
	if err != nil {
		t.Fatal(err)
	}
	return tr, st, d
}

func fail(typ strikes.Type, msg string) strikes.Failure {
	return strikes.Failure{Type: typ, ExceptionType: "RuntimeError", Message: msg}
}

func record(t *testing.T, tr *strikes.Tracker, s strikes.Skill, f strikes.Failure) strikes.Result {
	t.Helper()
	r, err := tr.Record(context.Background(), s, f)
	if err != nil {
		t.Fatalf("Record(%s, %q): %v", s, f.Message, err)
	}
	return r
}

func TestThirdStrikeDeprecatesOnce(t *testing.T) {
	tr, st, d := newTracker(t, strikes.Config{})
	for i, typ := range []strikes.Type{strikes.Exception, strikes.Timeout, strikes.Resource} {
		r := record(t, tr, skill, fail(typ, fmt.Sprint("failure ", i)))
		if !r.Recorded || r.Strike.Number != i+1 || r.Active != i+1 || r.Deprecated != (i == 2) {
			t.Errorf("strike %d: %+v", i+1, r)
		}
	}
	if len(d.got) != 1 || fmt.Sprint(d.got[0].Numbers) != "[1 2 3]" || d.got[0].Skill != skill || d.got[0].FinalReason != "failure 2" {
		t.Fatalf("Deprecator got %+v", d.got)
	}
	_, err := tr.Record(context.Background(), skill, fail(strikes.Exception, "again"))
	if !errors.Is(err, talos.ErrSkillException) || !strings.Contains(err.Error(), "deprecated") {
		t.Errorf("a strike on a deprecated skill: %v", err)
	}
	if len(d.got) != 1 {
		t.Errorf("deprecated %d times", len(d.got))
	}
	var names []string
	for _, e := range st.Events() {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "strike_recorded,strike_recorded,strike_recorded,skill_deprecated" {
		t.Errorf("audit events: %s", got)
	}
	if _, err := tr.Reset(context.Background(), skill, "operator:ann", "promoted"); !errors.Is(err, talos.ErrSkillException) {
		t.Errorf("Reset of a deprecated skill: %v", err)
	}
}

func TestThresholdIsConfigurable(t *testing.T) {
	tr, _, d := newTracker(t, strikes.Config{Threshold: 1})
	if r := record(t, tr, skill, fail(strikes.Exception, "x")); !r.Deprecated || len(d.got) != 1 {
		t.Errorf("threshold 1: %+v, %d deprecations", r, len(d.got))
	}
}

func TestSameExceptionCountsOnceWithin24Hours(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tr, _, _ := newTracker(t, strikes.Config{})
		first := "KeyError at 0x7f3a2b in job 3F2504E0-4F89-11D3-9A0C-0305E82C3301 at 2026-12-07T04:00:01Z"
		again := "KeyError at 0x0042ff in job 6ba7b810-9dad-11d1-80b4-00c04fd430c8 at 2026-12-08 03:59:59"
		record(t, tr, skill, fail(strikes.Exception, first))
		time.Sleep(23*time.Hour + 59*time.Minute)
		r := record(t, tr, skill, fail(strikes.Exception, again))
		if r.Recorded || r.Reason != "duplicate_exception" || r.Strike.Number != 1 || r.Active != 1 {
			t.Errorf("within 24 h: %+v", r)
		}
		// Another type of the same message is another failure.
		if r := record(t, tr, skill, strikes.Failure{Type: strikes.Exception, ExceptionType: "ValueError", Message: again}); !r.Recorded {
			t.Errorf("another exception type was taken for a duplicate: %+v", r)
		}
		time.Sleep(2 * time.Minute)
		if r := record(t, tr, skill, fail(strikes.Exception, again)); !r.Recorded || r.Strike.Number != 3 {
			t.Errorf("after 24 h: %+v", r)
		}
	})
}

func TestStrikesExpireAfter30DaysButSecurityNever(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr, st, d := newTracker(t, strikes.Config{})
		record(t, tr, skill, fail(strikes.Exception, "a"))
		record(t, tr, skill, fail(strikes.Security, "tried to open /var/run/docker.sock"))
		time.Sleep(30*24*time.Hour - time.Second)
		if act, _ := tr.Active(ctx, skill); len(act) != 2 {
			t.Fatalf("a second before expiry: %d active", len(act))
		}
		time.Sleep(time.Second)
		act, _ := tr.Active(ctx, skill)
		if len(act) != 1 || act[0].Type != strikes.Security {
			t.Fatalf("after 30 days: %+v, want only the security strike", act)
		}
		// The next strike is number 3, not a second number 2, and the
		// expired one is marked so in the store.
		r := record(t, tr, skill, fail(strikes.Timeout, "slow"))
		if r.Strike.Number != 3 || r.Active != 2 || r.Deprecated {
			t.Errorf("after expiry: %+v", r)
		}
		s, _ := st.State(ctx, skill)
		if s.Strikes[0].Status != strikes.Expired {
			t.Errorf("expired strike stored as %s", s.Strikes[0].Status)
		}
		time.Sleep(365 * 24 * time.Hour)
		act, _ = tr.Active(ctx, skill)
		if len(act) != 1 || act[0].Type != strikes.Security {
			t.Errorf("a year later: %+v, want the security strike still active", act)
		}
		if len(d.got) != 0 {
			t.Errorf("deprecated: %+v", d.got)
		}
	})
}

func TestStrikesFollowTheCode(t *testing.T) {
	tr, _, d := newTracker(t, strikes.Config{})
	record(t, tr, skill, fail(strikes.Exception, "1"))
	bumped := strikes.Skill{ID: skill.ID, Version: "1.2.1", Hash: skill.Hash}
	renamed := strikes.Skill{ID: "fetcher", Version: "1.0.0", Hash: skill.Hash}
	if r := record(t, tr, bumped, fail(strikes.Exception, "2")); r.Active != 2 || r.Strike.Number != 1 {
		t.Errorf("version bump of the same code: %+v, want 2 active, numbered 1 for the new version", r)
	}
	if r := record(t, tr, renamed, fail(strikes.Exception, "3")); !r.Deprecated {
		t.Errorf("the same code renamed escaped deprecation: %+v", r)
	}
	if len(d.got) != 1 || d.got[0].Skill != renamed {
		t.Errorf("deprecations %+v", d.got)
	}
	changed := strikes.Skill{ID: skill.ID, Version: "1.3.0", Hash: strikestest.Hash('b')}
	if r := record(t, tr, changed, fail(strikes.Exception, "4")); r.Active != 1 {
		t.Errorf("new code under a new version: %+v, want a fresh count", r)
	}
}

func TestResetKeepsSecurityStrikes(t *testing.T) {
	ctx := context.Background()
	tr, st, _ := newTracker(t, strikes.Config{Threshold: 5})
	record(t, tr, skill, fail(strikes.Exception, "1"))
	record(t, tr, skill, fail(strikes.Security, "2"))
	record(t, tr, skill, fail(strikes.Timeout, "3"))
	if _, err := tr.Reset(ctx, skill, "", ""); !errors.Is(err, talos.ErrConfigInvalid) {
		t.Errorf("Reset without actor and reason: %v", err)
	}
	n, err := tr.Reset(ctx, skill, "operator:ann", "promoted after review")
	if err != nil || n != 2 {
		t.Fatalf("Reset = %d, %v; want 2", n, err)
	}
	act, _ := tr.Active(ctx, skill)
	if len(act) != 1 || act[0].Type != strikes.Security {
		t.Errorf("after reset: %+v", act)
	}
	ev := st.Events()
	if last := ev[len(ev)-1]; last.Actor != "operator:ann" || last.Name != "strike_overturned" || last.Data["reason"] != "promoted after review" {
		t.Errorf("audit: %+v", last)
	}
	if r, err := tr.Verify(ctx); err != nil || r.Strikes != 3 {
		t.Errorf("Verify = %+v, %v", r, err)
	}
}

func TestBadInputIsReportedAllAtOnce(t *testing.T) {
	_, err := strikes.New(strikes.Config{Threshold: 11, Expiry: -1, Key: []byte("short")}, nil, nil)
	for _, want := range []string{"Threshold 11", "Expiry -1ns", "Key: 5 bytes", "store: nil"} {
		if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("New: %v\nlacks %q", err, want)
		}
	}
	tr, st, _ := newTracker(t, strikes.Config{})
	_, err = tr.Record(context.Background(), strikes.Skill{ID: "X\x1b[31m", Version: "1.0", Hash: "zz"},
		strikes.Failure{Type: "oops", ExceptionType: ""})
	for _, want := range []string{`skill id "X\x1b[31m"`, `version "1.0"`, `hash "zz"`, `failure type "oops"`, `exception type ""`} {
		if !errors.Is(err, talos.ErrConfigInvalid) || !strings.Contains(err.Error(), want) {
			t.Errorf("Record: %v\nlacks %q", err, want)
		}
	}
	if all, _ := st.All(context.Background()); len(all) != 0 {
		t.Errorf("bad input stored %d strikes", len(all))
	}
}

// TestCanonicalEncoding pins the signed text: changing it would make every
// stored strike fail Verify.
func TestCanonicalEncoding(t *testing.T) {
	at := time.Date(2026, 12, 7, 4, 0, 0, 120000000, time.FixedZone("CET", 3600))
	s := strikes.Strike{Skill: skill, Number: 2, Type: strikes.Timeout, ExceptionHash: "e1",
		OccurredAt: at, ExpiresAt: at.Add(30 * 24 * time.Hour)}
	want := "scraper:1.2.0:" + skill.Hash + ":2:timeout:2026-12-07T03:00:00.12Z:e1:2027-01-06T03:00:00.12Z"
	if got := strikes.Canonical(s); got != want {
		t.Errorf("Canonical =\n%s\nwant\n%s", got, want)
	}
	s.Type, s.ExpiresAt = strikes.Security, time.Time{}
	if got := strikes.Canonical(s); !strings.HasSuffix(got, ":e1:") {
		t.Errorf("a strike that never expires: %s", got)
	}
}

func TestNormalize(t *testing.T) {
	got := strikes.Normalize("id 3F2504E0-4F89-11D3-9A0C-0305E82C3301 at 2026-01-02 03:04:05.123+01:00 ptr 0xDEADbeef")
	if want := "id <UUID> at <TIMESTAMP> ptr <ADDR>"; got != want {
		t.Errorf("Normalize = %q, want %q", got, want)
	}
}

func FuzzRecord(f *testing.F) {
	f.Add("ValueError", "bad value 0x1f at 2026-01-01T00:00:00Z", 5)
	f.Add("E", strings.Repeat("é", 2000), 1000)
	f.Add("", "\xff\xfe", 3)
	f.Fuzz(func(t *testing.T, excType, msg string, max int) {
		if max < 1 || max > 5000 {
			max = 1000
		}
		st := strikestest.NewMemoryStore()
		tr, err := strikes.New(strikes.Config{Key: key, MaxMessage: max}, st, nil)
		if err != nil {
			t.Fatal(err)
		}
		r, err := tr.Record(context.Background(), skill, strikes.Failure{Type: strikes.Exception, ExceptionType: excType, Message: msg})
		if err != nil {
			if !errors.Is(err, talos.ErrConfigInvalid) {
				t.Fatalf("unexpected error: %v", err)
			}
			return
		}
		m := r.Strike.Message
		if !utf8.ValidString(m) || utf8.RuneCountInString(m) > max {
			t.Fatalf("stored message of %d runes (max %d), valid %v", utf8.RuneCountInString(m), max, utf8.ValidString(m))
		}
		if _, err := tr.Verify(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}

func TestExpireAllSweepsEverySkill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		tr, st, _ := newTracker(t, strikes.Config{})
		other := strikes.Skill{ID: "other_skill", Version: "2.0.0", Hash: strikestest.Hash('c')}
		record(t, tr, skill, fail(strikes.Exception, "a"))
		record(t, tr, skill, fail(strikes.Security, "b"))
		record(t, tr, other, fail(strikes.Timeout, "c"))
		if n, err := tr.ExpireAll(ctx); err != nil || n != 0 {
			t.Fatalf("before expiry: %d, %v", n, err)
		}
		time.Sleep(31 * 24 * time.Hour)
		n, err := tr.ExpireAll(ctx)
		if err != nil || n != 2 {
			t.Fatalf("ExpireAll = %d, %v; want the 2 non-security strikes", n, err)
		}
		all, _ := st.All(ctx)
		for _, s := range all {
			want := strikes.Expired
			if s.Type == strikes.Security {
				want = strikes.Active
			}
			if s.Status != want {
				t.Errorf("strike %d of %s is %s, want %s", s.Number, s.Skill, s.Status, want)
			}
		}
		if n, _ := tr.ExpireAll(ctx); n != 0 {
			t.Errorf("a second sweep marked %d", n)
		}
		if r, err := tr.Verify(ctx); err != nil || r.AuditEntries != 5 {
			t.Errorf("Verify = %+v, %v; want 3 recorded + 2 expired audit entries", r, err)
		}
	})
}
