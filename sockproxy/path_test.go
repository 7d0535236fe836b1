package sockproxy

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNormalizePath(t *testing.T) {
	ok := map[string]string{
		"/_ping":                          "/_ping",
		"/v1.41/_ping":                    "/v1.41/_ping",
		"/v1.41/containers/json":          "/v1.41/containers/json",
		"/containers/abc/logs":            "/containers/abc/logs",
		"/v1.41/containers/my%2dbox/json": "/v1.41/containers/my-box/json",
	}
	for in, want := range ok {
		got, err := NormalizePath(in)
		if err != nil || got != want {
			t.Errorf("NormalizePath(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := map[string]string{
		"/v1.41/containers/x/../../images/json": "blocked pattern",
		"/v1.41/containers/%2e%2e/images":       "blocked pattern",
		"/v1.41/containers/%2E%2E/x/json":       "blocked pattern",
		"/v1.41/containers/%252e%252e/json":     "% after one decode",
		"/v1.41/containers/x%252fjson":          "% after one decode",
		"//v1.41/containers/json":               "not canonical",
		"/v1.41//containers/json":               "not canonical",
		"/v1.41/containers/./json":              "not canonical",
		"/v1.41/containers/json/":               "not canonical",
		"/v1.41/containers/x/..":                "not canonical",
		"/v1.41/containers/x%2f.%2fjson":        "not canonical",
		"/v1.41/containers/x%00/json":           "byte 0x00",
		"/v1.41/containers/x%5c/json":           "byte 0x5c",
		"/v1.41/containers/prune":               "blocked pattern",
		"/v1.41/containers/x/exec":              "blocked pattern",
		"/v1.41/IMAGES/json":                    "blocked pattern",
		"/v1.41/containers/%zz/json":            "percent-encoded",
		"containers/json":                       "not an absolute path",
		"/" + strings.Repeat("a", 600):          "limit",
	}
	for in, want := range bad {
		got, err := NormalizePath(in)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NormalizePath(%q) = %q, %v; want an error containing %q", in, got, err, want)
		}
	}
}

func TestMatchRoute(t *testing.T) {
	cases := []struct {
		in, version, container string
		op                     Op
	}{
		{"/_ping", "", "", OpPing},
		{"/v1.41/_ping", "1.41", "", OpPing},
		{"/v1.41/version", "1.41", "", OpVersion},
		{"/containers/json", "", "", OpList},
		{"/v1.41/containers/create", "1.41", "", OpCreate},
		{"/v1.41/containers/abc/json", "1.41", "abc", OpInspect},
		{"/v1.41/containers/abc", "1.41", "abc", OpRemove},
		{"/v1.41/containers/a.b_c-d/attach", "1.41", "a.b_c-d", OpAttach},
		{"/v1.41/containers/abc/kill", "1.41", "abc", OpKill},
	}
	for _, c := range cases {
		r, err := matchRoute(c.in)
		if err != nil || r.op != c.op || r.version != c.version || r.container != c.container {
			t.Errorf("matchRoute(%q) = %+v, %v; want op %s version %q container %q", c.in, r, err, c.op, c.version, c.container)
			continue
		}
		// forwardPath with the same container reproduces the path.
		if got := r.forwardPath(c.container); got != c.in {
			t.Errorf("forwardPath of %q = %q", c.in, got)
		}
	}
	for _, in := range []string{"/info", "/v1.41/info", "/events", "/containers/abc/rename", "/containers/abc/json/x",
		"/containers/-abc/json", "/v1/containers/json", "/v1.41", "/containers", "/v1.41.2/containers/json", "/auth"} {
		if r, err := matchRoute(in); err == nil {
			t.Errorf("matchRoute(%q) = %+v; want not in allowlist", in, r)
		}
	}
}

// FuzzNormalizePath checks the normaliser's invariants: what it accepts is
// decoded (no '%'), clean, made of safe bytes, free of blocked patterns, and
// a fixed point.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/v1.41/containers/json", "/containers/x/../../images", "/%2e%2e/", "/%252e%252e",
		"//containers//json", "/containers/x%2F..%2Fy", "/v1.41/containers/abc/logs", "/_ping", "/./x", "/a/%2e/b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizePath(in)
		if err != nil {
			return
		}
		if strings.Contains(out, "%") || path.Clean(out) != out || !strings.HasPrefix(out, "/") {
			t.Fatalf("NormalizePath(%q) = %q: not decoded or not clean", in, out)
		}
		for i := 0; i < len(out); i++ {
			if !pathCharOK(out[i]) {
				t.Fatalf("NormalizePath(%q) = %q: bad byte", in, out)
			}
		}
		if strings.Contains(out, "/../") || strings.HasSuffix(out, "/..") {
			t.Fatalf("NormalizePath(%q) = %q: traversal", in, out)
		}
		for _, re := range blockedPatterns {
			if re.MatchString(strings.ToLower(out)) {
				t.Fatalf("NormalizePath(%q) = %q matches blocked %s", in, out, re)
			}
		}
		again, err := NormalizePath(out)
		if err != nil || again != out {
			t.Fatalf("not a fixed point: %q -> %q -> %q, %v", in, out, again, err)
		}
		if r, err := matchRoute(out); err == nil {
			if r.op.perContainer() && !validContainerRef(r.container) {
				t.Fatalf("route %+v has a bad container ref", r)
			}
		}
	})
}

// FuzzBlockedMatch checks that the fast matcher agrees with the spec's
// regular expressions on every input.
func FuzzBlockedMatch(f *testing.F) {
	for _, s := range []string{"/containers/x/exec", "/containers//exec", "/exec/a/start", "/exec//start", "/x/prune",
		"/a/../b", "/%2e%2e", "/images", "/containers/a/b/exec", "/containers/a", "/exec/a/b/start", "/ſecrets", "/networKs"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		lower := strings.ToLower(s)
		want := false
		for _, re := range blockedPatterns {
			want = want || re.MatchString(lower)
		}
		if got := blockedMatch(lower) != ""; got != want {
			t.Fatalf("blockedMatch(%q) = %v; regexps say %v", lower, got, want)
		}
	})
}

// FuzzFoldKey checks that foldKey agrees with strings.EqualFold, which is
// how encoding/json (and so the engine) matches keys to fields.
func FuzzFoldKey(f *testing.F) {
	f.Add("NetworkMode", "NetworKMode")
	f.Add("Sysctls", "ſysctls")
	f.Add("a", "B")
	f.Fuzz(func(t *testing.T, a, b string) {
		if !utf8.ValidString(a) || !utf8.ValidString(b) {
			return
		}
		if (foldKey(a) == foldKey(b)) != strings.EqualFold(a, b) {
			t.Fatalf("foldKey disagrees with EqualFold on %q, %q", a, b)
		}
	})
}
