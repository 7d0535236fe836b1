package dream

import (
	"errors"
	"strings"
	"testing"
	"time"

	talos "github.com/talos-ironclad/talos"
)

func mustLoc(t testing.TB, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Skipf("time zone %s not available: %v", name, err)
	}
	return loc
}

func TestScheduleNext(t *testing.T) {
	utc := time.UTC
	at := func(s string) time.Time {
		v, err := time.Parse("2006-01-02 15:04", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	cases := []struct {
		expr, from, want string
	}{
		{"0 4 * * *", "2026-12-07 03:59", "2026-12-07 04:00"},
		{"0 4 * * *", "2026-12-07 04:00", "2026-12-08 04:00"},
		{"0 4 * * *", "2026-12-31 05:00", "2027-01-01 04:00"},
		{"*/15 * * * *", "2026-12-07 10:07", "2026-12-07 10:15"},
		{"*/15 * * * *", "2026-12-07 10:45", "2026-12-07 11:00"},
		{"30 4 * * *", "2026-12-07 04:29", "2026-12-07 04:30"},
		{"0 3 * * 0", "2026-12-07 00:00", "2026-12-13 03:00"}, // Sunday
		{"0 3 * * 7", "2026-12-07 00:00", "2026-12-13 03:00"},
		{"0 3 * * SUN", "2026-12-07 00:00", "2026-12-13 03:00"},
		{"0 2 1 * *", "2026-12-07 00:00", "2027-01-01 02:00"},
		{"0 1 1 1 *", "2026-12-07 00:00", "2027-01-01 01:00"},
		{"0 0 29 2 *", "2026-03-01 00:00", "2028-02-29 00:00"},
		{"0 0 13 * 5", "2026-12-07 00:00", "2026-12-11 00:00"}, // Friday or the 13th
		{"5,10-12 6 * jan-feb *", "2026-12-07 00:00", "2027-01-01 06:05"},
		{"10/20 * * * *", "2026-12-07 00:31", "2026-12-07 00:50"},
		{"@daily", "2026-12-07 00:00", "2026-12-08 00:00"},
		{"@hourly", "2026-12-07 00:00", "2026-12-07 01:00"},
	}
	for _, c := range cases {
		s, err := ParseSchedule(c.expr, utc)
		if err != nil {
			t.Errorf("%q: %v", c.expr, err)
			continue
		}
		if got := s.Next(at(c.from)); !got.Equal(at(c.want)) {
			t.Errorf("%q after %s = %s, want %s", c.expr, c.from, got.Format("2006-01-02 15:04 Mon"), c.want)
		}
	}
}

func TestScheduleTimeZoneAndDST(t *testing.T) {
	ny := mustLoc(t, "America/New_York")
	s, err := ParseSchedule("0 4 * * *", ny)
	if err != nil {
		t.Fatal(err)
	}
	// 04:00 New York is 09:00 UTC in winter, 08:00 UTC in summer.
	got := s.Next(time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("winter: %s, want %s", got.UTC(), want)
	}
	got = s.Next(time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC); !got.Equal(want) {
		t.Fatalf("summer: %s, want %s", got.UTC(), want)
	}

	// Spring forward (8 March 2026, 02:00 → 03:00): 02:30 does not exist
	// and runs once that day, at 03:30 EDT.
	s, _ = ParseSchedule("30 2 * * *", ny)
	got = s.Next(time.Date(2026, 3, 8, 0, 0, 0, 0, ny))
	if got.Day() != 8 || got.In(ny).Hour() != 3 || got.In(ny).Minute() != 30 {
		t.Fatalf("spring forward: %s, want 2026-03-08 03:30 EDT", got.In(ny))
	}
	if next := s.Next(got); next.In(ny).Day() != 9 || next.In(ny).Hour() != 2 {
		t.Fatalf("after the gap: %s, want 2026-03-09 02:30", next.In(ny))
	}

	// Fall back (1 November 2026, 02:00 EDT → 01:00 EST): 01:30 happens
	// twice and runs once.
	s, _ = ParseSchedule("30 1 * * *", ny)
	first := s.Next(time.Date(2026, 11, 1, 0, 0, 0, 0, ny))
	second := s.Next(first)
	if first.In(ny).Day() != 1 || second.In(ny).Day() != 2 {
		t.Fatalf("fall back: runs at %s then %s, want once on 1 November then 2 November", first.In(ny), second.In(ny))
	}
	// Every 30 minutes through the repeated hour: strictly increasing.
	s, _ = ParseSchedule("*/30 * * * *", ny)
	prev := time.Date(2026, 11, 1, 0, 0, 0, 0, ny)
	for range 8 {
		n := s.Next(prev)
		if !n.After(prev) {
			t.Fatalf("Next(%s) = %s, not after it", prev, n)
		}
		prev = n
	}
}

func TestParseScheduleErrors(t *testing.T) {
	cases := map[string][]string{
		"":                {"0 fields"},
		"0 4 * *":         {"4 fields"},
		"60 4 * * *":      {"minute field", `"60"`, "0 to 59"},
		"0 24 * * *":      {"hour field", `"24"`},
		"0 4 0 * *":       {"day-of-month field"},
		"0 4 * 13 *":      {"month field", "three-letter"},
		"0 4 * * 8":       {"day-of-week field"},
		"*/0 4 * * *":     {"step", "1 to 60"},
		"5-1 4 * * *":     {"runs backwards"},
		"1,,2 4 * * *":    {"empty list item"},
		"x 25 * * *":      {"minute field", "hour field"}, // every problem at once
		"0 0 31 2 *":      {"never matches"},
		"0 0 30 2,4 *":    nil, // 30 April exists
		"0 0 31 2 1":      nil, // Mondays still come
		"0 4 * * *\x00 x": {`\x00`},
	}
	for expr, wants := range cases {
		_, err := ParseSchedule(expr, nil)
		if wants == nil {
			if err != nil {
				t.Errorf("%q: %v, want accepted", expr, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, talos.ErrConfigInvalid) {
			t.Errorf("%q: err = %v, want T010", expr, err)
			continue
		}
		for _, w := range wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %q does not mention %q", expr, err, w)
			}
		}
	}
}

func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"0 4 * * *", "*/5 * * * *", "0 0 29 2 *", "0 3 * * 0", "1-5/2,7 1 1 jan mon", "@weekly", "0 0 31 2 *", "*/0 * * * *", "59 23 31 12 7"} {
		f.Add(s, int64(0))
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		ny = time.UTC
	}
	f.Fuzz(func(t *testing.T, expr string, from int64) {
		s, err := ParseSchedule(expr, ny)
		if err != nil {
			if s != nil {
				t.Fatal("schedule and error both returned")
			}
			return
		}
		start := time.Unix(from%(1<<34), 0) // years 1425–2514
		n := s.Next(start)
		if !n.After(start) {
			t.Fatalf("%q: Next(%s) = %s, not after it", expr, start, n)
		}
		if _, err := ParseSchedule(s.String(), ny); err != nil {
			t.Fatalf("normalised form %q of %q does not parse: %v", s.String(), expr, err)
		}
	})
}
