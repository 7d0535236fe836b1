package redact

import (
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"":                                        "",
		"redis://user:secret@127.0.0.1:6379/0":    "redis://user:<redacted>@127.0.0.1:6379/0",
		"redis://:secret@127.0.0.1:6379/0":        "redis://:<redacted>@127.0.0.1:6379/0",
		"postgres://u:pw@h:5432/db?sslmode=off":   "postgres://u:<redacted>@h:5432/db?sslmode=off",
		"https://ghp_tok@github.com/x":            "https://<redacted>@github.com/x",
		"http://127.0.0.1:8000":                   "http://127.0.0.1:8000",
		"unix:///run/docker.sock":                 "unix:///run/docker.sock",
		"/run/docker.sock":                        "/run/docker.sock",
		"127.0.0.1:2375":                          "127.0.0.1:2375",
		"http://%zz":                              Unparsable,
		"not a url":                               Unparsable,
		"user:pw@host:1":                          Unparsable,
		"http://h/p?token=s3cret&sslmode=require": "http://h/p?token=<redacted>&sslmode=require",
		"http://h/p?X-Amz-Signature=abc;a=b":      "http://h/p?X-Amz-Signature=<redacted>&a=<redacted>",
		"http://h/p?s3cret":                       "http://h/p?<redacted>",
		"http://h/cb#access_token=s3cret":         "http://h/cb#<redacted>",
		"https://key:tok@api.example.com/v1?x=pw": "https://key:<redacted>@api.example.com/v1?x=<redacted>",
		"http://h/\x1b[31m":                       Unparsable,
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	for in, want := range map[string]string{
		`Get "http://h:1/api?token=s3cret": dial tcp: refused`: `Get "http://h:1/api?token=<redacted>": dial tcp: refused`,
		"Chroma at http://u:pw@h:8000/x.":                      "Chroma at http://u:<redacted>@h:8000/x.",
		"(see https://h/?k=s3cret)":                            "(see https://h/?k=<redacted>)",
		"host=db user=talos password=s3cret sslmode=disable":   "host=db user=talos password=<redacted> sslmode=disable",
		"api_key='s 3cret' next":                               "api_key=<redacted> next",
		"nothing here":                                         "nothing here",
		"LOG_LEVEL=DEBUG":                                      "LOG_LEVEL=DEBUG",
		"estimated_tokens=501, budget=500":                     "estimated_tokens=501, budget=500",
		"AUTH_TOKEN=abc CLIENT_SECRET=def":                     "AUTH_TOKEN=<redacted> CLIENT_SECRET=<redacted>",
	} {
		if got := Text(in); got != want {
			t.Errorf("Text(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValue(t *testing.T) {
	if got := Value("a\x1b[2Jb\n"); got != `"a\x1b[2Jb\n"` {
		t.Errorf("control characters: %s", got)
	}
	big := strings.Repeat("x", 20<<20)
	got := Value(big)
	if len(got) > 100 || !strings.HasSuffix(got, "… (20971520 bytes)") {
		t.Errorf("20 MB value shown as %d bytes: %.120s", len(got), got)
	}
	if got := Value(strings.Repeat("é", MaxValueRunes)); !strings.HasSuffix(got, `é"`) {
		t.Errorf("a value of exactly MaxValueRunes is clipped: %s", got)
	}
}

// FuzzURL checks that no password, user name, non-safe query value or
// fragment of a URL survives URL or Text.
func FuzzURL(f *testing.F) {
	for _, s := range []string{
		"redis://u:hunter2secret@h:1/0", "http://h/?token=hunter2secret", "http://hunter2secret@h",
		"http://h/#hunter2secret", "postgres://h/db?sslmode=disable&password=hunter2secret",
		"http://h/?a=1&b=hunter2secret;c", "http://[::1]:80/?x=%zz", "hunter2secret:1",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		out := URL(raw)
		u, err := url.Parse(raw)
		if err != nil || !strings.Contains(raw, "://") {
			return
		}
		var secrets []string
		if u.User != nil {
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p)
			} else {
				secrets = append(secrets, u.User.Username())
			}
		}
		secrets = append(secrets, u.Fragment)
		for k, vs := range u.Query() {
			if !safeParams[strings.ToLower(k)] {
				secrets = append(secrets, vs...)
			}
		}
		for _, s := range secrets {
			if len(s) < 8 || strings.Contains(Redacted+Unparsable, s) {
				continue // too short to be told apart from the rest of the URL
			}
			rest := strings.Replace(raw, s, "", 1)
			if strings.Contains(out, s) && !strings.Contains(rest, s) {
				t.Fatalf("URL(%q) = %q leaks %q", raw, out, s)
			}
			if m := urlRE.FindStringIndex(raw); m == nil || m[0] != 0 || m[1] != len(raw) {
				continue // Text sees only what looks like a URL in prose
			}
			if txt := Text("at " + raw + " now"); strings.Contains(txt, s) && !strings.Contains(rest, s) {
				t.Fatalf("Text leaks %q: %q", s, txt)
			}
		}
	})
}

func TestReplaceAttr(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewJSONHandler(&b, &slog.HandlerOptions{ReplaceAttr: ReplaceAttr}))
	log.Info("probe of http://h/?token=m1 failed", "url", "redis://u:m2@h:1", "err", errors.New(`Get "http://h/x?sig=m3": EOF`),
		slog.Group("g", "dsn", "host=h password=m4"), "n", 7)
	out := b.String()
	for _, s := range []string{"m1", "m2", "m3", "m4"} {
		if strings.Contains(out, s) {
			t.Errorf("%s leaked: %s", s, out)
		}
	}
	if !strings.Contains(out, `"n":7`) || !strings.Contains(out, "token=<redacted>") {
		t.Errorf("log line altered beyond its secrets: %s", out)
	}
}
