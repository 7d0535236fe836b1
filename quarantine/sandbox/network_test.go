package sandbox_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/strikes"
)

// pyProxy is what a skill with network uses: HTTP through the proxy named
// by HTTP_PROXY (the image has no http module, so by hand), and CONNECT.
const pyProxy = `import os, socket
PROXY = os.environ["HTTP_PROXY"][len("http://"):].split(":")
PROXY = (PROXY[0], int(PROXY[1]))

def read_all(s):
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out
        out += d

def get(url):
    host = url.split("/")[2]
    s = socket.create_connection(PROXY, timeout=10)
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (url, host)).encode())
    head, _, body = read_all(s).partition(b"\r\n\r\n")
    s.close()
    return int(head.split(b" ")[1]), body.decode()

def connect_echo(hostport, msg):
    s = socket.create_connection(PROXY, timeout=10)
    s.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (hostport, hostport)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(1)
        if not d:
            break
        head += d
    status = int(head.split(b" ")[1])
    if status != 200:
        return status, ""
    s.sendall(msg.encode())
    s.shutdown(socket.SHUT_WR)
    got = read_all(s).decode()
    s.close()
    return status, got
`

// netFixture is a web server and a TCP echo server on loopback, the hosts
// a skill with network is allowed to reach in these tests.
type netFixture struct {
	web, echo string // host:port
}

func newNetFixture(t *testing.T) netFixture {
	t.Helper()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			fmt.Fprint(w, "hello from the web")
		case "/away":
			http.Redirect(w, r, "http://10.255.255.1/", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(web.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				fmt.Fprintf(c, "echo: %s", line)
			}()
		}
	}()
	return netFixture{web: strings.TrimPrefix(web.URL, "http://"), echo: ln.Addr().String()}
}

// netSkill writes a skill that declares hosts.
func netSkill(t *testing.T, id string, hosts []string, code string) string {
	t.Helper()
	dir := writeSkill(t, id, pyProxy+code, false)
	man := "id: " + id + "\nversion: 1.0.0\nlanguage: python\nentry: main.py\ncapabilities:\n  network: " + pyList(hosts) + "\n"
	if err := os.WriteFile(filepath.Join(dir, quarantine.ManifestName), []byte(man), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func loopbackOnly(fx netFixture) func(*sandbox.Config) {
	return func(c *sandbox.Config) {
		c.EgressAllow = []string{fx.web, fx.echo}
		c.EgressAllowAddrs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
}

// TestSkillWithNetworkReachesOnlyWhatItDeclared runs skills that declare
// hosts the operator approved: they reach them over HTTP and CONNECT
// through the run's egress proxy, while the container itself still has no
// network; an undeclared host, a redirect to a private address and a
// direct connection are refused and make the run a security violation.
func TestSkillWithNetworkReachesOnlyWhatItDeclared(t *testing.T) {
	fx := newNetFixture(t)
	s, c := newSandbox(t, loopbackOnly(fx))

	t.Run("declared hosts", func(t *testing.T) {
		dir := netSkill(t, "net_ok", []string{fx.web, fx.echo}, fmt.Sprintf(`
print(get("http://%s/page"))
print(connect_echo("%s", "ping\n"))
print(open("/proc/net/dev").read().count(":") - 0)
`, fx.web, fx.echo))
		res, err := s.Run(context.Background(), sandbox.Request{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if !res.Verdict.Passed() {
			t.Fatalf("verdict %+v\nstdout %s\nstderr %s", res.Verdict, res.Stdout, res.Stderr)
		}
		out := string(res.Stdout)
		for _, want := range []string{"(200, 'hello from the web')", "(200, 'echo: ping\\n')", "\n1\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("stdout %q lacks %q", out, want)
			}
		}
		if len(res.Egress) != 2 || !res.Egress[0].Allowed || !res.Egress[1].Allowed || res.Egress[1].Method != http.MethodConnect {
			t.Errorf("egress events %+v, want an allowed GET and CONNECT", res.Egress)
		}
	})

	otherPort := strings.Split(fx.echo, ":")[1]
	for _, tc := range []struct{ name, code, evidence string }{
		{"undeclared host", fmt.Sprintf("print(get('http://127.0.0.2:%s/'))\n", otherPort), sandbox.EvidenceEgress},
		{"undeclared port of a declared host", "print(get('http://127.0.0.1:1/'))\n", sandbox.EvidenceEgress},
		{"redirect followed to a private address", fmt.Sprintf("st, _ = get('http://%s/away')\nprint(st)\nprint(get('http://10.255.255.1/'))\n", fx.web), sandbox.EvidenceEgress},
		{"direct connection", fmt.Sprintf("socket.create_connection(('127.0.0.1', %s), timeout=3)\n", strings.Split(fx.web, ":")[1]), sandbox.EvidenceNetwork},
		{"name lookup", "socket.getaddrinfo('example.org', 80)\n", sandbox.EvidenceResolve},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := netSkill(t, "net_bad", []string{fx.web, fx.echo}, tc.code)
			res, err := s.Run(context.Background(), sandbox.Request{Dir: dir})
			if err != nil {
				t.Fatal(err)
			}
			if res.Verdict.Outcome != sandbox.OutcomeSecurity || res.Verdict.Strike != strikes.Security {
				t.Fatalf("verdict %+v, want a security violation\nstdout %s\nstderr %s", res.Verdict, res.Stdout, res.Stderr)
			}
			found := false
			for _, e := range res.Observation.Evidence {
				found = found || e.Kind == tc.evidence
			}
			if !found {
				t.Errorf("evidence %+v lacks %s", res.Observation.Evidence, tc.evidence)
			}
		})
	}
	if l := leftovers(t, c); len(l) > 0 {
		t.Errorf("containers left: %v", l)
	}
}

// TestRunRefusesNetworkManifest: a declared host the operator did not
// approve refuses the run before any container exists, naming the host.
func TestRunRefusesNetworkManifest(t *testing.T) {
	fx := newNetFixture(t)
	s, c := newSandbox(t, loopbackOnly(fx))
	dir := netSkill(t, "net_skill", []string{fx.web, "example.org", "127.0.0.1:9"}, "print('x')\n")
	_, err := s.Run(context.Background(), sandbox.Request{Dir: dir})
	if talos.CodeOf(err) != talos.CodePolicyDenied || !strings.Contains(err.Error(), "example.org, 127.0.0.1:9;") || strings.Contains(err.Error(), fx.web+",") {
		t.Fatalf("err = %v, want T406 naming example.org and 127.0.0.1:9 only", err)
	}
	if l := leftovers(t, c); len(l) > 0 {
		t.Errorf("containers left: %v", l)
	}
}
