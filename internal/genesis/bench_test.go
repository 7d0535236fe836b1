package genesis_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkGenesisSkillStart times one call of each genesis skill on the
// harness's engine: "cold" builds a new sandbox (its socket proxy) and a
// Runner and makes the first call; "warm" is a call on a sandbox already
// in use. Every call is a fresh container either way. Run it with
// -benchtime=20x for the p50 of 20; it reports the medians in ms.
func BenchmarkGenesisSkillStart(b *testing.B) {
	host := testenv.DockerHost(b)
	img := testenv.PythonImage(b)
	m, _ := newManagerTB(b)
	rep := genesis.Admit(context.Background(), genesis.Builtin(), genesis.Config{TrustLevel: genesis.TrustContainers, Autoload: true}, m, nil, nil)
	bb := make([]byte, 4)
	_, _ = rand.Read(bb)
	createOnEngine(b, engineClient(b, host), testenv.BusyboxImage(b), "talos-genesis-bench-"+hex.EncodeToString(bb), true)
	wsRoot := filepath.Join(b.TempDir(), "workspace")
	ws := filepath.Join(wsRoot, "default")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		b.Fatal(err)
	}
	if os.Getuid() == 0 {
		_ = os.Chown(ws, 65534, 65534)
	}
	stage := b.TempDir()
	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><head><title>Bench</title></head><body><p>A page of the test web.</p></body></html>")
	}))
	defer web.Close()
	wu, _ := url.Parse(web.URL)
	pageURL := "http://localhost:" + wu.Port() + "/"
	f, err := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{"localhost:" + wu.Port()}, AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		b.Fatal(err)
	}
	open := func() (*genesis.Runner, *sandbox.Sandbox, *genesis.DockerEngine) {
		sb, err := sandbox.New(sandbox.Config{DockerHost: host, Image: img, Timeout: 30 * time.Second,
			StagingDir: filepath.Join(stage, "stage"), WorkspaceDir: wsRoot})
		if err != nil {
			b.Fatal(err)
		}
		d, err := genesis.NewDockerEngine(genesis.DockerConfig{DockerHost: host})
		if err != nil {
			b.Fatal(err)
		}
		return genesis.NewRunner(sb, ws, rep).WithDocker(d, filepath.Join(wsRoot, ".docker")).WithWeb(f, filepath.Join(wsRoot, ".web")), sb, d
	}
	ctx := context.Background()
	calls := map[string]func(*genesis.Runner){
		genesis.FileManager: func(r *genesis.Runner) {
			if _, err := r.Files(ctx, genesis.FileRequest{Op: "list", Path: ""}); err != nil {
				b.Fatal(err)
			}
		},
		genesis.CodeExecutor: func(r *genesis.Runner) {
			if cr, err := r.Code(ctx, "print('hello')"); err != nil || cr.ExitCode != 0 {
				b.Fatal(cr, err)
			}
		},
		genesis.DockerControl: func(r *genesis.Runner) {
			if out, err := r.Docker(ctx, genesis.DockerList, ""); err != nil || !strings.Contains(out, "talos-genesis-bench-") {
				b.Fatal(out, err)
			}
		},
		genesis.WebScraper: func(r *genesis.Runner) {
			if wr, err := r.Web(ctx, pageURL); err != nil {
				b.Fatal(wr, err)
			}
		},
	}
	ids := []string{genesis.FileManager, genesis.CodeExecutor, genesis.DockerControl, genesis.WebScraper}
	warmR, warmSB, warmD := open()
	defer warmSB.Close()
	defer warmD.Close()
	for _, call := range calls { // image layers and page cache
		call(warmR)
	}
	cold, warm := map[string][]time.Duration{}, map[string][]time.Duration{}
	b.ResetTimer()
	for range b.N {
		for _, id := range ids {
			t0 := time.Now()
			r, sb, d := open()
			calls[id](r)
			cold[id] = append(cold[id], time.Since(t0))
			sb.Close()
			d.Close()
			t0 = time.Now()
			calls[id](warmR)
			warm[id] = append(warm[id], time.Since(t0))
		}
	}
	b.StopTimer()
	for _, id := range ids {
		b.ReportMetric(float64(p50(cold[id]).Microseconds())/1000, id+"-cold-p50-ms")
		b.ReportMetric(float64(p50(warm[id]).Microseconds())/1000, id+"-warm-p50-ms")
	}
}

// BenchmarkWebFetch times a fetch of a 20 KB page from a loopback server
// through the egress Fetcher (allowlist, dial-time address check, no keep
// alive) against a plain http.Client fetch of the same page, and the whole
// web_scraper call (fetch plus text extraction in a fresh container). Run
// it with -benchtime=20x for the p50 of 20.
func BenchmarkWebFetch(b *testing.B) {
	page := []byte("<html><body>" + strings.Repeat("<p>some text of the page</p>", 700) + "</body></html>")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.Write(page)
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	pageURL := "http://localhost:" + u.Port() + "/"
	f, err := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{"localhost:" + u.Port()}, AllowAddrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}})
	if err != nil {
		b.Fatal(err)
	}
	direct := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	ctx := context.Background()
	host := testenv.DockerHost(b)
	img := testenv.PythonImage(b)
	m, _ := newManagerTB(b)
	rep := genesis.Admit(ctx, genesis.Builtin(), genesis.Config{TrustLevel: genesis.TrustWrite, Autoload: true}, m, nil, nil)
	wsRoot := filepath.Join(b.TempDir(), "workspace")
	sb, err := sandbox.New(sandbox.Config{DockerHost: host, Image: img, Timeout: 30 * time.Second, StagingDir: filepath.Join(b.TempDir(), "stage"), WorkspaceDir: wsRoot})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	r := genesis.NewRunner(sb, "", rep).WithWeb(f, filepath.Join(wsRoot, ".web"))
	viaFetcher := func() {
		if p, err := f.Fetch(ctx, pageURL); err != nil || len(p.Body) != len(page) {
			b.Fatal(err)
		}
	}
	viaDirect := func() {
		resp, err := direct.Get(pageURL)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != len(page) {
			b.Fatal("short body")
		}
	}
	whole := func() {
		if wr, err := r.Web(ctx, pageURL); err != nil || !strings.Contains(wr.Text, "some text") {
			b.Fatal(err)
		}
	}
	viaFetcher()
	viaDirect()
	whole()
	var df, dd, dw []time.Duration
	b.ResetTimer()
	for range b.N {
		for _, x := range []struct {
			run func()
			out *[]time.Duration
		}{{viaFetcher, &df}, {viaDirect, &dd}, {whole, &dw}} {
			t0 := time.Now()
			x.run()
			*x.out = append(*x.out, time.Since(t0))
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(p50(df).Microseconds()), "egress-p50-µs")
	b.ReportMetric(float64(p50(dd).Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(p50(dw).Microseconds())/1000, "web_scraper-call-p50-ms")
}

// BenchmarkWebFetchInternalNetwork is BenchmarkWebFetch against the test
// web: a busybox httpd in a container on an internal Docker network,
// admitted with an allow-address line. Run it with -benchtime=20x.
func BenchmarkWebFetchInternalNetwork(b *testing.B) {
	web := startTestWeb(b)
	ip := web.IP.String()
	al, err := genesis.ParseWebAllowlist([]byte(ip + "\nallow-address " + ip + "\n"))
	if err != nil {
		b.Fatal(err)
	}
	f, err := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: al.Hosts, AllowAddrs: al.Addrs})
	if err != nil {
		b.Fatal(err)
	}
	pageURL := "http://" + ip + "/article.html"
	direct := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	viaFetcher := func() {
		if p, err := f.Fetch(context.Background(), pageURL); err != nil || len(p.Body) != len(webArticle) {
			b.Fatal(err)
		}
	}
	viaDirect := func() {
		resp, err := direct.Get(pageURL)
		if err != nil {
			b.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if len(body) != len(webArticle) {
			b.Fatal("short body")
		}
	}
	viaFetcher()
	viaDirect()
	var df, dd []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		viaFetcher()
		df = append(df, time.Since(t0))
		t0 = time.Now()
		viaDirect()
		dd = append(dd, time.Since(t0))
	}
	b.StopTimer()
	b.ReportMetric(float64(p50(df).Microseconds()), "egress-p50-µs")
	b.ReportMetric(float64(p50(dd).Microseconds()), "direct-p50-µs")
}

// BenchmarkBrowser times browser_automation on the test web (a busybox
// httpd on an internal Docker network): "session" is a new session's
// first navigation (container create and start, Chromium up, DevTools
// connected, the page loaded), "read" a page read on a running session,
// "skill-read" the whole read_text call (the read plus the report made by
// the skill in a fresh sandbox container). Run it with -benchtime=20x.
func BenchmarkBrowser(b *testing.B) {
	host := testenv.DockerHost(b)
	img := testenv.BrowserImage(b)
	pyImg := testenv.PythonImage(b)
	web := startTestWeb(b)
	ip := web.IP.String()
	f, err := genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: []string{ip}})
	if err != nil {
		b.Fatal(err)
	}
	br, err := genesis.NewBrowser(genesis.BrowserConfig{DockerHost: host, Image: img, Network: web.Network, Web: f})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	m, _ := newManagerTB(b)
	ctx := context.Background()
	rep := genesis.Admit(ctx, genesis.Builtin(), genesis.Config{TrustLevel: genesis.TrustCode, Autoload: true}, m, nil, nil)
	wsRoot := filepath.Join(b.TempDir(), "workspace")
	sb, err := sandbox.New(sandbox.Config{DockerHost: host, Image: pyImg, Timeout: 30 * time.Second, StagingDir: filepath.Join(b.TempDir(), "stage"), WorkspaceDir: wsRoot})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	const conv = "bench"
	r := genesis.NewRunner(sb, "", rep).WithBrowser(br, filepath.Join(wsRoot, ".browser"), filepath.Join(wsRoot, "shots"),
		func(context.Context) string { return conv })
	page := "http://" + ip + "/article.html"
	var ds, dr, dk []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		if _, _, err := br.Navigate(ctx, conv, page); err != nil {
			b.Fatal(err)
		}
		ds = append(ds, time.Since(t0))
		t0 = time.Now()
		if p, err := br.Read(ctx, conv); err != nil || !strings.Contains(p.Text, "Quarterly") {
			b.Fatal(p, err)
		}
		dr = append(dr, time.Since(t0))
		t0 = time.Now()
		if out, err := r.BrowserCall(ctx, genesis.BrowserRequest{Action: genesis.BrowserReadText}); err != nil || !strings.Contains(out, "Quarterly") {
			b.Fatal(out, err)
		}
		dk = append(dk, time.Since(t0))
		br.End(conv)
	}
	b.StopTimer()
	b.ReportMetric(float64(p50(ds).Microseconds())/1000, "session-start-p50-ms")
	b.ReportMetric(float64(p50(dr).Microseconds())/1000, "read-p50-ms")
	b.ReportMetric(float64(p50(dk).Microseconds())/1000, "skill-read-p50-ms")
}
