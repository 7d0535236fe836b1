package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseEnvFile(t *testing.T) {
	in := "\ufeff# header\n\n" +
		"A=plain\n" +
		"export B = spaced  # trailing comment\n" +
		"C='single # not a comment $(x)'\n" +
		"D=\"double \\\"q\\\" \\n \\$HOME\" # c\n" +
		"E=\n" +
		"F=a#b\r\n" +
		"   G=indented\n"
	got, err := ParseEnvFile([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{"A", "plain", 3}, {"B", "spaced", 4}, {"C", "single # not a comment $(x)", 5},
		{"D", "double \"q\" \n $HOME", 6}, {"E", "", 7}, {"F", "a#b", 8}, {"G", "indented", 9},
	}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseEnvFileErrors(t *testing.T) {
	cases := []struct {
		in, frag string
		line     int
	}{
		{"A=1\njustasecretvalue\n", "without '='", 2},
		{"A=1\n1BAD=2\n", "invalid variable name", 2},
		{"A=\"open\n", "unterminated double quote", 1},
		{"A='open\n", "unterminated single quote", 1},
		{"A='x' y\n", "after the closing quote", 1},
		{"A=1\nA=2\n", "already set at line 1", 2},
		{"A=\x00\n", "NUL", 1},
	}
	for _, tc := range cases {
		_, err := ParseEnvFile([]byte(tc.in))
		var pe *ParseError
		if !errors.As(err, &pe) || pe.Line != tc.line || !strings.Contains(err.Error(), tc.frag) {
			t.Errorf("%q: got %v, want line %d %q", tc.in, err, tc.line, tc.frag)
		}
	}
	// A line without '=' may be a pasted secret: it is never echoed.
	_, err := ParseEnvFile([]byte("hunter2hunter2\n"))
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("line echoed: %v", err)
	}
}

// TestParseEnvFileReportsEveryProblem pins that parsing goes on after a bad
// line: every bad line and every repeated key is reported, and the good
// lines are still returned.
func TestParseEnvFileReportsEveryProblem(t *testing.T) {
	in := "A=1\nnot a pair\nB='open\nA=2\n1X=3\nC=ok\nC=again\nD=\x00\n"
	entries, err := ParseEnvFile([]byte(in))
	var perrs ParseErrors
	if !errors.As(err, &perrs) {
		t.Fatalf("err = %T %v, want ParseErrors", err, err)
	}
	var lines []int
	for _, pe := range perrs {
		lines = append(lines, pe.Line)
	}
	if want := []int{2, 3, 4, 5, 7, 8}; !slices.Equal(lines, want) {
		t.Errorf("problem lines = %v, want %v (%v)", lines, want, err)
	}
	if !strings.Contains(err.Error(), "A is already set at line 1") || !strings.Contains(err.Error(), "C is already set at line 6") {
		t.Errorf("duplicates not named: %v", err)
	}
	want := []Entry{{"A", "1", 1}, {"C", "ok", 6}}
	if !slices.Equal(entries, want) {
		t.Errorf("entries = %v, want %v", entries, want)
	}
	// A huge invalid key is clipped and escaped, not echoed whole.
	_, err = ParseEnvFile([]byte(strings.Repeat("\x1b", 1<<20) + "=1\n"))
	if err == nil || len(err.Error()) > 400 || strings.Contains(err.Error(), "\x1b") {
		t.Errorf("invalid key echoed (%d bytes)", len(err.Error()))
	}
}

func TestParseYAML(t *testing.T) {
	in := `# Talos
trust_level: 2
log_level: debug
talos_redis_url: ~
socket_proxy_allowed_ops:
  - containers:start
  - containers:wait
gemini_temperature: 0.2
`
	got, probs := ParseYAML([]byte(in))
	if len(probs) != 0 {
		t.Fatal(probs)
	}
	want := []Entry{
		{"TRUST_LEVEL", "2", 2}, {"LOG_LEVEL", "debug", 3}, {"TALOS_REDIS_URL", "", 4},
		{"SOCKET_PROXY_ALLOWED_OPS", "containers:start,containers:wait", 5}, {"GEMINI_TEMPERATURE", "0.2", 8},
	}
	for i := range want {
		if i >= len(got) || got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

func TestParseYAMLErrors(t *testing.T) {
	cases := []struct {
		in   string
		line int
		frag string
	}{
		{"trust_level: 1\ntrust_level: 2\n", 2, "already set at line 1"},
		{"a: 1\n", 1, `unknown key "a" at line 1`},
		{"trust_level: [1, 2]\n", 1, "single value, not a list"},
		{"trust_level:\n  x: 1\n", 2, "not a mapping"},
		{"- 1\n- 2\n", 1, "top level must be a mapping"},
		{"trust_level: 1\n  bad indent: [\n", 2, "invalid YAML"},
		{"trust_level: 1\n---\nlog_level: INFO\n", 2, "more than one YAML document"},
		{"talos_home: /x\n", 1, "cannot be set in config.yaml"},
		{"gemini_api_key: abc\n", 1, "is a secret"},
		{"socket_proxy_allowed_ops: [\"a:b,c:d\"]\n", 1, "contains a comma"},
	}
	for _, tc := range cases {
		_, probs := ParseYAML([]byte(tc.in))
		if len(probs) == 0 || probs[0].Line != tc.line || !strings.Contains(probs[0].Error(), tc.frag) {
			t.Errorf("%q: got %v, want line %d %q", tc.in, probs, tc.line, tc.frag)
		}
	}
	for _, empty := range []string{"", "# only a comment\n", "---\n"} {
		if got, probs := ParseYAML([]byte(empty)); len(got) != 0 || len(probs) != 0 {
			t.Errorf("%q: %v %v", empty, got, probs)
		}
	}
}

func FuzzParseEnvFile(f *testing.F) {
	for _, s := range []string{
		"A=1\n", "export B='x'\n", "C=\"a\\nb\" # c\n", "# c\n\nD=\n", "E='unterminated\n",
		"F=\"x\\\"\n", "1=2\n", "G=a#b\r\nH=\"$(rm -rf /)\"\n", "\ufeffI=1",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := ParseEnvFile(data)
		if err != nil {
			var perrs ParseErrors
			if !errors.As(err, &perrs) || len(perrs) == 0 {
				t.Fatalf("error is not a ParseErrors: %v", err)
			}
			for i, pe := range perrs {
				if pe.Line < 1 || i > 0 && pe.Line <= perrs[i-1].Line {
					t.Fatalf("problems out of line order: %v", err)
				}
			}
		}
		seen := map[string]bool{}
		for _, e := range entries {
			if !envKeyRE.MatchString(e.Key) || seen[e.Key] || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
			seen[e.Key] = true
			if strings.IndexByte(e.Value, 0) >= 0 {
				t.Fatalf("NUL in value")
			}
		}
		// Round trip: re-encoding each value single-quoted (when possible)
		// parses back to the same value.
		var b strings.Builder
		var keep []Entry
		for _, e := range entries {
			if strings.ContainsAny(e.Value, "'\n\r") {
				continue
			}
			b.WriteString(e.Key + "='" + e.Value + "'\n")
			keep = append(keep, e)
		}
		again, err := ParseEnvFile([]byte(b.String()))
		if err != nil {
			t.Fatalf("re-parse: %v", err)
		}
		for i := range keep {
			if again[i].Value != keep[i].Value {
				t.Fatalf("round trip %q -> %q", keep[i].Value, again[i].Value)
			}
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	for _, s := range []string{
		"trust_level: 1\n", "a: 1\n", "socket_proxy_allowed_ops: [a:b]\n", "x: &a 1\ny: *a\n",
		"trust_level:\n  - 1\n", "- 1\n", "---\n---\n", "trust_level: 1\ntrust_level: 1\n", "{",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, probs := ParseYAML(data)
		for _, e := range entries {
			if lookupVar(e.Key) == nil || IsSecret(e.Key) || e.Line < 1 {
				t.Fatalf("bad entry %+v", e)
			}
		}
		for _, p := range probs {
			if p.Msg == "" || !utf8.ValidString(p.Error()) && utf8.Valid(data) {
				t.Fatalf("bad problem %+v", p)
			}
		}
	})
}

func TestYAMLLegacyHint(t *testing.T) {
	_, probs := ParseYAML([]byte("redis_host: x\n"))
	if len(probs) != 1 || !strings.Contains(probs[0].Msg, "use talos_redis_url: redis://HOST:PORT") {
		t.Fatalf("%v", probs)
	}
}
