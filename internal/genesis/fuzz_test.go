package genesis

import (
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/egress"
)

// FuzzCheckPath: an accepted path is relative, has no ".." part, no
// backslash and no control character.
func FuzzCheckPath(f *testing.F) {
	for _, s := range []string{"", ".", "a/b.txt", "../x", "/etc/passwd", "a/../../b", "a\\b", "a\x00b", "..", "a/..", "./a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if CheckPath("path", p) != nil {
			return
		}
		if strings.HasPrefix(p, "/") || strings.Contains(p, "\\") || len(p) > MaxPathBytes {
			t.Fatalf("accepted %q", p)
		}
		for _, part := range strings.Split(p, "/") {
			if part == ".." {
				t.Fatalf("accepted %q", p)
			}
		}
		for _, c := range p {
			if c < 0x20 || c == 0x7f {
				t.Fatalf("accepted %q", p)
			}
		}
	})
}

// FuzzParseFileOutput: whatever a skill prints, parsing returns a result
// or an error, never panics.
func FuzzParseFileOutput(f *testing.F) {
	f.Add([]byte("entry YS50eHQ= f 5\nok\n"))
	f.Add([]byte("data aGk=\ntruncated 0\nok\n"))
	f.Add([]byte("error bm8=\n"))
	f.Add([]byte("entry !!! f x\n"))
	f.Fuzz(func(t *testing.T, out []byte) {
		_, _ = parseFileOutput("fuzz", out)
	})
}

// FuzzParseAllowlist (ParseWebAllowlist): every accepted host is lower
// case without spaces, and the list builds both a Fetcher and the browser's
// egress proxy (one matcher, so they cannot disagree on what is valid);
// every opened range is masked and no broader than the minimum.
func FuzzParseAllowlist(f *testing.F) {
	f.Add([]byte("example.org\n# comment\n*.docs.example.org\n"))
	f.Add([]byte("Bad Host\n"))
	f.Add([]byte("..\n*.\n"))
	f.Add([]byte("allow-address 172.19.0.2\nallow-address 10.0.0.0/8\nallow-address fd00::/7\n"))
	f.Add([]byte("allow-address 0.0.0.0/0\nallow-address 10.1.2.3/8\nallow-address fe80::1%eth0\n"))
	f.Add([]byte("example.org:8080\n[::1]:443\n2001:db8::1\n10.0.0.1:99999\nexample.org.\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		al, err := ParseWebAllowlist(data)
		if err != nil {
			return
		}
		for _, h := range al.Hosts {
			if h != strings.ToLower(h) || strings.ContainsAny(h, " \t\r\n#") {
				t.Fatalf("accepted %q", h)
			}
		}
		if _, err := NewFetcher(FetchConfig{AllowedHosts: al.Hosts, AllowAddrs: al.Addrs}); err != nil {
			t.Fatalf("a parsed list does not build a Fetcher: %v", err)
		}
		if _, err := egress.New(browserEgressConfig(&Fetcher{cfg: FetchConfig{AllowedHosts: al.Hosts, AllowAddrs: al.Addrs}}, nil), nil); err != nil {
			t.Fatalf("a parsed list does not build the browser's egress proxy: %v", err)
		}
		for _, p := range al.Addrs {
			if p != p.Masked() || p.Addr().Is4() && p.Bits() < MinAllowAddressBits4 || p.Addr().Is6() && p.Bits() < MinAllowAddressBits6 {
				t.Fatalf("opened %s", p)
			}
		}
	})
}
