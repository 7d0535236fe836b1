package dream

import (
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	talos "github.com/talos-ironclad/talos"
)

// Schedule is a parsed five-field cron expression (minute hour
// day-of-month month day-of-week) evaluated on the wall clock of a time
// zone. The zero Schedule is not usable; build one with ParseSchedule.
type Schedule struct {
	expr    string
	loc     *time.Location
	minute  uint64 // bits 0–59
	hour    uint64 // bits 0–23
	dom     uint64 // bits 1–31
	month   uint64 // bits 1–12
	dow     uint64 // bits 0–6, Sunday = 0
	domStar bool   // day-of-month field was * (or */1)
	dowStar bool
}

// maxScheduleYears bounds the search of Next: every expression ParseSchedule
// accepts matches at least once in any 8 consecutive years (29 February).
const maxScheduleYears = 9

var (
	monthNames = map[string]int{"jan": 1, "feb": 2, "mar": 3, "apr": 4, "may": 5, "jun": 6, "jul": 7, "aug": 8, "sep": 9, "oct": 10, "nov": 11, "dec": 12}
	dowNames   = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}
)

// descriptors are the @-shorthands ParseSchedule accepts.
var descriptors = map[string]string{
	"@yearly":   "0 0 1 1 *",
	"@annually": "0 0 1 1 *",
	"@monthly":  "0 0 1 * *",
	"@weekly":   "0 0 * * 0",
	"@daily":    "0 0 * * *",
	"@midnight": "0 0 * * *",
	"@hourly":   "0 * * * *",
}

// ParseSchedule parses a standard five-field cron expression: minute
// (0–59), hour (0–23), day of month (1–31), month (1–12 or JAN–DEC) and
// day of week (0–7 or SUN–SAT; 0 and 7 are Sunday). Each field is *, a
// value, a range a-b, a step */n, a-b/n or a/n, or a comma list of those.
// As in Vixie cron, when both day fields are restricted a day matches
// either. The @yearly, @monthly, @weekly, @daily, @midnight and @hourly
// shorthands are accepted. Times are wall-clock times in loc (nil means
// UTC). Every problem is reported at once, naming the field and the value;
// an expression that can never match (such as 31 February) is refused.
func ParseSchedule(expr string, loc *time.Location) (*Schedule, error) {
	const op = "dream.ParseSchedule"
	if loc == nil {
		loc = time.UTC
	}
	src := strings.TrimSpace(expr)
	if d, ok := descriptors[strings.ToLower(src)]; ok {
		src = d
	}
	fields := strings.Fields(src)
	if len(fields) != 5 {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op,
			"cron expression %s has %d fields: want 5 (minute hour day-of-month month day-of-week), for example \"0 4 * * *\"",
			clip(expr), len(fields))
	}
	s := &Schedule{expr: strings.Join(fields, " "), loc: loc}
	specs := []struct {
		name     string
		min, max int
		names    map[string]int
		dst      *uint64
		star     *bool
	}{
		{"minute", 0, 59, nil, &s.minute, nil},
		{"hour", 0, 23, nil, &s.hour, nil},
		{"day-of-month", 1, 31, nil, &s.dom, &s.domStar},
		{"month", 1, 12, monthNames, &s.month, nil},
		{"day-of-week", 0, 7, dowNames, &s.dow, &s.dowStar},
	}
	var errs []error
	for i, sp := range specs {
		set, star, err := parseField(fields[i], sp.min, sp.max, sp.names)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s field %s: %w", sp.name, clip(fields[i]), err))
			continue
		}
		*sp.dst = set
		if sp.star != nil {
			*sp.star = star
		}
	}
	if len(errs) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, op, "cron expression "+clip(expr)+" is invalid", errors.Join(errs...))
	}
	if s.dow&(1<<7) != 0 { // 7 is Sunday too
		s.dow = s.dow&^(1<<7) | 1
	}
	// With both day fields restricted either may match, and some weekday
	// always comes; otherwise the days of the month must exist in a month.
	if !s.domStar && s.dowStar && !s.possibleDate() {
		return nil, talos.Errorf(talos.CodeConfigInvalid, op,
			"cron expression %s never matches: no month in it has any of its days of the month", clip(expr))
	}
	return s, nil
}

// possibleDate reports whether some month of the schedule has one of its
// days of the month (29 February counts: it comes in leap years).
func (s *Schedule) possibleDate() bool {
	days := [13]int{0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31}
	for m := 1; m <= 12; m++ {
		if s.month&(1<<m) == 0 {
			continue
		}
		if s.dom&(1<<(days[m]+1)-1) != 0 {
			return true
		}
	}
	return false
}

// parseField parses one comma list into a bit set; star reports a bare *
// (or */1), which matters for the day-of-month/day-of-week rule.
func parseField(f string, lo, hi int, names map[string]int) (uint64, bool, error) {
	var set uint64
	star := false
	for part := range strings.SplitSeq(f, ",") {
		if part == "" {
			return 0, false, fmt.Errorf("empty list item: want values separated by single commas")
		}
		rng, stepStr, hasStep := strings.Cut(part, "/")
		step := 1
		if hasStep {
			n, err := strconv.Atoi(stepStr)
			if err != nil || n < 1 || n > hi-lo+1 {
				return 0, false, fmt.Errorf("step %s: want a whole number from 1 to %d", clip(stepStr), hi-lo+1)
			}
			step = n
		}
		a, b := lo, hi
		switch {
		case rng == "*":
			if step == 1 {
				star = true
			}
		default:
			x, y, isRange := strings.Cut(rng, "-")
			var err error
			if a, err = fieldValue(x, lo, hi, names); err != nil {
				return 0, false, err
			}
			if isRange {
				if b, err = fieldValue(y, lo, hi, names); err != nil {
					return 0, false, err
				}
				if b < a {
					return 0, false, fmt.Errorf("range %s runs backwards: write the smaller value first", clip(rng))
				}
			} else if !hasStep {
				b = a
			}
		}
		for v := a; v <= b; v += step {
			set |= 1 << v
		}
	}
	return set, star, nil
}

func fieldValue(s string, lo, hi int, names map[string]int) (int, error) {
	if v, ok := names[strings.ToLower(s)]; ok {
		return v, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < lo || n > hi {
		what := fmt.Sprintf("a number from %d to %d", lo, hi)
		if names != nil {
			what += " or a three-letter English name"
		}
		return 0, fmt.Errorf("value %s: want %s", clip(s), what)
	}
	return n, nil
}

// String returns the expression in its normalised form (single spaces,
// shorthands expanded).
func (s *Schedule) String() string { return s.expr }

// Location returns the time zone whose wall clock the schedule follows.
func (s *Schedule) Location() *time.Location { return s.loc }

// Next returns the first instant strictly after t whose wall-clock time in
// the schedule's zone matches. A wall-clock time skipped by a daylight-saving
// jump still runs that day, shifted by the jump (02:30 becomes 03:30 when
// clocks go from 02:00 to 03:00); a wall-clock time that happens twice
// (clocks set back) runs once. Next never returns an instant at or before t.
func (s *Schedule) Next(t time.Time) time.Time {
	lt := t.In(s.loc)
	// Civil (wall-clock) arithmetic in UTC, which has no transitions.
	c := time.Date(lt.Year(), lt.Month(), lt.Day(), lt.Hour(), lt.Minute(), 0, 0, time.UTC).Add(time.Minute)
	limit := c.AddDate(maxScheduleYears, 0, 0)
	for c.Before(limit) {
		switch {
		case s.month&(1<<int(c.Month())) == 0:
			c = time.Date(c.Year(), c.Month()+1, 1, 0, 0, 0, 0, time.UTC)
		case !s.dayMatches(c):
			c = time.Date(c.Year(), c.Month(), c.Day()+1, 0, 0, 0, 0, time.UTC)
		case s.hour&(1<<c.Hour()) == 0:
			c = c.Truncate(time.Hour).Add(time.Hour)
		case s.minute&(1<<c.Minute()) == 0:
			// Jump to the next set minute of this hour, or the next hour.
			rest := s.minute >> (c.Minute() + 1)
			if rest == 0 {
				c = c.Truncate(time.Hour).Add(time.Hour)
			} else {
				c = c.Add(time.Duration(bits.TrailingZeros64(rest)+1) * time.Minute)
			}
		default:
			inst := time.Date(c.Year(), c.Month(), c.Day(), c.Hour(), c.Minute(), 0, 0, s.loc)
			if w := inst.In(s.loc); w.Day() != c.Day() || w.Hour() != c.Hour() || w.Minute() != c.Minute() {
				// c falls in a daylight-saving gap, and time.Date may pick
				// either offset: read c with the offset in force before the
				// jump, which lands after it, shifted by the jump.
				_, before := inst.Add(-12 * time.Hour).In(s.loc).Zone()
				inst = time.Unix(c.Unix()-int64(before), 0).In(s.loc)
			}
			if inst.After(t) {
				return inst
			}
			c = c.Add(time.Minute) // the second pass through a repeated hour
		}
	}
	return time.Time{} // unreachable for schedules ParseSchedule accepts
}

func (s *Schedule) dayMatches(c time.Time) bool {
	dom := s.dom&(1<<c.Day()) != 0
	dow := s.dow&(1<<int(c.Weekday())) != 0
	if s.domStar || s.dowStar {
		return dom && dow
	}
	return dom || dow
}

// clip quotes s for an error message: at most 64 runes, control characters
// escaped.
func clip(s string) string {
	r := []rune(s)
	if len(r) > 64 {
		s = string(r[:64]) + "…"
	}
	return strconv.Quote(s)
}
