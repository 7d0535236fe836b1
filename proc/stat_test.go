package proc

import (
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func statLine(pid int, comm string, state byte, ppid int, start uint64) string {
	// Fields 3..22 of proc(5); 22 is starttime.
	f := []string{string(state), strconv.Itoa(ppid), strconv.Itoa(pid), "0", "0", "-1", "4194560", "100", "0", "0", "0", "5", "3", "0", "0", "20", "0", "1", "0", strconv.FormatUint(start, 10), "12345678", "300"}
	return strconv.Itoa(pid) + " (" + comm + ") " + strings.Join(f, " ") + "\n"
}

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		line string
		want Stat
	}{
		{"plain", statLine(42, "sleep", 'S', 1, 9876), Stat{PID: 42, Comm: "sleep", State: 'S', PPID: 1, PGRP: 42, StartTime: 9876}},
		{"zombie", statLine(7, "sh", 'Z', 3, 1), Stat{PID: 7, Comm: "sh", State: 'Z', PPID: 3, PGRP: 7, StartTime: 1}},
		// comm may hold spaces and ')' — the spec's regex `\([^)]+\)` breaks here.
		{"paren in comm", statLine(9, "a) S 1 (b", 'R', 2, 55), Stat{PID: 9, Comm: "a) S 1 (b", State: 'R', PPID: 2, PGRP: 9, StartTime: 55}},
		{"empty comm", statLine(10, "", 'I', 2, 5), Stat{PID: 10, Comm: "", State: 'I', PPID: 2, PGRP: 10, StartTime: 5}},
		{"spaces in comm", statLine(11, "Web Content", 'S', 2, 6), Stat{PID: 11, Comm: "Web Content", State: 'S', PPID: 2, PGRP: 11, StartTime: 6}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat(tt.line)
			if err != nil {
				t.Fatalf("ParseStat: %v", err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	bad := map[string]string{
		"empty":         "",
		"no parens":     "12 sleep S 1",
		"no pid":        "(sleep) S 1 1 1",
		"negative pid":  strings.Replace(statLine(5, "x", 'S', 1, 1), "5 (", "-5 (", 1),
		"short":         "12 (sleep) S 1 12",
		"bad state":     strings.Replace(statLine(5, "x", 'S', 1, 1), ") S ", ") SS ", 1),
		"bad ppid":      strings.Replace(statLine(5, "x", 'S', 1, 1), ") S 1 ", ") S x ", 1),
		"bad starttime": strings.Replace(statLine(5, "x", 'S', 1, 77), " 77 ", " -77 ", 1),
	}
	for name, line := range bad {
		if st, err := ParseStat(line); err == nil {
			t.Errorf("%s: ParseStat(%q) = %+v, want an error", name, line, st)
		}
	}
}

func TestParseStatSelf(t *testing.T) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatalf("this package needs Linux's /proc: %v", err)
	}
	st, err := ParseStat(string(data))
	if err != nil {
		t.Fatalf("parsing our own /proc/self/stat: %v", err)
	}
	if st.PID != os.Getpid() || st.PPID != os.Getppid() || st.StartTime == 0 {
		t.Errorf("got %+v, want pid %d ppid %d and a start time", st, os.Getpid(), os.Getppid())
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add(statLine(42, "sleep", 'S', 1, 9876))
	f.Add(statLine(9, "a) S 1 (b", 'R', 2, 55))
	f.Add("1 (x) Z 0 0")
	f.Add("")
	f.Add(")(")
	f.Add("99999999999999999999 (x) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1")
	f.Fuzz(func(t *testing.T, line string) {
		st, err := ParseStat(line)
		if err != nil {
			return
		}
		if st.PID <= 0 || st.PPID < 0 || st.PGRP < 0 {
			t.Fatalf("accepted %q with pid %d ppid %d pgrp %d", line, st.PID, st.PPID, st.PGRP)
		}
		// The comm is exactly what lies between the first '(' and the last ')'.
		if !strings.Contains(line, "("+st.Comm+")") {
			t.Fatalf("comm %q is not a parenthesised part of %q", st.Comm, line)
		}
		// Round trip: a line rebuilt from the result parses to the same result.
		again, err := ParseStat(statLine(st.PID, st.Comm, st.State, st.PPID, st.StartTime))
		if err != nil {
			t.Fatalf("rebuilt line of %+v does not parse: %v", st, err)
		}
		again.PGRP = st.PGRP
		if again != st {
			t.Fatalf("round trip: %+v != %+v", again, st)
		}
	})
}

func TestStatStates(t *testing.T) {
	for _, c := range []struct {
		state        byte
		zombie, dead bool
	}{{'Z', true, false}, {'X', false, true}, {'x', false, true}, {'D', false, false}, {'T', false, false}, {'S', false, false}} {
		st := Stat{State: c.state}
		if st.Zombie() != c.zombie || st.Dead() != c.dead {
			t.Errorf("state %c: Zombie %v Dead %v, want %v %v", c.state, st.Zombie(), st.Dead(), c.zombie, c.dead)
		}
	}
}

func TestParseCmdline(t *testing.T) {
	for in, want := range map[string][]string{
		"":                                      nil,
		"\x00":                                  nil,
		"ollama\x00runner\x00--model\x00/b\x00": {"ollama", "runner", "--model", "/b"},
		"sleep\x0010":                           {"sleep", "10"},
		"a\x00\x00b\x00":                        {"a", "", "b"},
	} {
		if got := ParseCmdline([]byte(in)); !slices.Equal(got, want) {
			t.Errorf("ParseCmdline(%q) = %q, want %q", in, got, want)
		}
	}
}
