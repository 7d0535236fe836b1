package genesis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/remote"
	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/sockproxy"
)

// BrowserAutomation is the skill id of the genesis skill that drives a
// headless Chromium.
const BrowserAutomation = "browser_automation"

// Defaults and limits of BrowserConfig. The container gets 512 MiB without
// swap, one CPU and a 100 MiB /tmp. Its pids limit is 256, not 100: the
// engine counts threads, and headless Chromium with two tabs runs about 130
// (with 100 its renderer fails to start threads and crashes).
const (
	DefaultBrowserIdleTimeout = 5 * time.Minute
	DefaultBrowserMaxSessions = 2
	DefaultBrowserMaxRespawns = 5
	DefaultBrowserBackoff     = 5 * time.Second // then 10, 20, 40, 80 s
	DefaultBrowserStartWait   = 30 * time.Second
	DefaultBrowserOpTimeout   = 20 * time.Second
	BrowserMemory             = 512 << 20
	BrowserNanoCPUs           = 1e9
	BrowserPids               = 256
	BrowserTmpfs              = "rw,nosuid,nodev,size=100m,mode=1777"
	// BrowserDevToolsPort is where the container publishes Chromium's
	// DevTools (socat in front of Chromium's own 127.0.0.1:9222).
	BrowserDevToolsPort = 9223
	// MaxBrowserTextBytes is how much of a page's text a read returns.
	MaxBrowserTextBytes = 64 << 10
	// MaxSelectorBytes and MaxFillBytes bound click and fill requests.
	MaxSelectorBytes = 512
	MaxFillBytes     = 4 << 10
)

// Labels of a browser container besides sockproxy.LabelManaged.
const (
	LabelBrowserSession = "talos.session_id"
	LabelBrowserCreated = "talos.created_at"
)

// browserLabels are the labels of a session's container: extra (checked
// by NewBrowser) plus the browser's own, which extra cannot replace.
func browserLabels(extra map[string]string, session string) map[string]string {
	l := maps.Clone(extra)
	if l == nil {
		l = map[string]string{}
	}
	l[sockproxy.LabelManaged] = sockproxy.LabelManagedValue
	l[LabelBrowserSession] = session
	l[LabelBrowserCreated] = time.Now().UTC().Format(time.RFC3339)
	return l
}

var sessionPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// BrowserConfig configures a Browser.
type BrowserConfig struct {
	// DockerHost is the engine: unix:///path/docker.sock or tcp://host:port.
	DockerHost string
	// Image is the browser image (Debian's chromium and socat; built by
	// scripts/services.sh browser-image).
	Image string
	// Network is the Docker network the browser containers join: the
	// only network they can reach, and the one Talos reaches their
	// DevTools port on. It is never "host" or "none".
	Network string
	// Web decides which pages may be opened: a navigation's URL must pass
	// its allowlist (http or https, an approved host). Every request
	// Chromium makes — navigations, redirects, a page's own subresources
	// and scripts' requests — goes through an egress proxy Talos runs for
	// the browser, which admits only the same hosts on the same ports (80
	// and 443 unless an entry names one; one matcher decides both) and never a loopback, private or link-local address unless Web's
	// AllowAddrs opens it.
	Web *Fetcher
	// IdleTimeout is how long a session may go unused before its container
	// is removed; 0 means DefaultBrowserIdleTimeout.
	IdleTimeout time.Duration
	// MaxSessions is how many sessions (one per conversation) may run at
	// once; 0 means DefaultBrowserMaxSessions.
	MaxSessions int
	// MaxRespawns is how many times in a row a dead browser is started
	// again; 0 means DefaultBrowserMaxRespawns.
	MaxRespawns int
	// Backoff is the wait before the first respawn, doubled for each
	// further one; 0 means DefaultBrowserBackoff.
	Backoff time.Duration
	// Audit receives the socket proxy's records (tier-1 audit); nil
	// discards. Logger receives operational messages; nil discards.
	// Labels are put on every browser container besides
	// sockproxy.LabelManaged, LabelBrowserSession and LabelBrowserCreated,
	// which they cannot replace (sandbox.CheckLabels says what is allowed);
	// a host uses one to find its own containers on a shared engine.
	Labels        map[string]string
	Audit, Logger *slog.Logger
}

// Browser runs headless Chromium sessions, one container per conversation,
// through a socket proxy of its own (create, start, inspect, stop, kill and
// remove of Talos-labelled containers on Network only, no binds, no added
// capabilities). A session is removed after IdleTimeout without use; a
// browser that died is started again after a backoff (Backoff, doubled each
// time, at most MaxRespawns in a row).
type Browser struct {
	cfg   BrowserConfig
	log   *slog.Logger
	proxy *sockproxy.Private
	// egressCfg is every session's egress proxy configuration, checked
	// once; egressRoot holds each session's socket folder.
	egressCfg  egress.Config
	egressRoot string
	cli        *client.Client

	mu       sync.Mutex
	sessions map[string]*browserSession
	closed   bool
}

type browserSession struct {
	b  *Browser
	id string

	mu          sync.Mutex // one operation at a time
	containerID string
	ctx         context.Context // the chromedp tab
	cancelTab   context.CancelFunc
	cancelAlloc context.CancelFunc
	egress      *browserEgress // the container's egress proxy
	attempts    int            // respawns in a row without a successful operation
	tried       bool           // a browser was started (or tried) before
	timer       *time.Timer
	idleGen     uint64 // which arming of timer may still end the session
	gone        bool
}

// NewBrowser checks cfg and starts the socket proxy; Close removes every
// session and stops it.
func NewBrowser(cfg BrowserConfig) (*Browser, error) {
	const op = "genesis.NewBrowser"
	var errs []error
	if cfg.DockerHost == "" {
		errs = append(errs, errors.New("DockerHost is empty: want unix:///path/docker.sock or tcp://host:port"))
	}
	if cfg.Image == "" {
		errs = append(errs, errors.New("Image is empty: build it with scripts/services.sh browser-image"))
	}
	if n := strings.ToLower(cfg.Network); n == "" || n == "host" || n == "none" || strings.HasPrefix(n, "container:") {
		errs = append(errs, fmt.Errorf("Network %s: want the name of a Docker network (not host, none or container:…)", redact.Value(cfg.Network)))
	}
	if cfg.Web == nil {
		errs = append(errs, errors.New("Web is nil: the browser needs the allowlist of web hosts"))
	}
	if cfg.IdleTimeout < 0 || cfg.MaxSessions < 0 || cfg.MaxRespawns < 0 || cfg.Backoff < 0 {
		errs = append(errs, fmt.Errorf("IdleTimeout %v, MaxSessions %d, MaxRespawns %d, Backoff %v: want 0 (the default) or more",
			cfg.IdleTimeout, cfg.MaxSessions, cfg.MaxRespawns, cfg.Backoff))
	}
	errs = append(errs, sandbox.CheckLabels(cfg.Labels, LabelBrowserSession, LabelBrowserCreated)...)
	if len(errs) > 0 {
		return nil, talos.E(talos.CodeConfigInvalid, op, "invalid browser_automation configuration", errors.Join(errs...))
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultBrowserIdleTimeout
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultBrowserMaxSessions
	}
	if cfg.MaxRespawns == 0 {
		cfg.MaxRespawns = DefaultBrowserMaxRespawns
	}
	if cfg.Backoff == 0 {
		cfg.Backoff = DefaultBrowserBackoff
	}
	lg := cfg.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	egCfg := browserEgressConfig(cfg.Web, lg)
	if _, err := egress.New(egCfg, nil); err != nil {
		return nil, err
	}
	egRoot, err := os.MkdirTemp("", "talos-browser-egress-")
	if err == nil {
		err = os.Chmod(egRoot, 0o755)
	}
	if err != nil {
		_ = os.RemoveAll(egRoot)
		return nil, talos.E(talos.CodeSockProxy, op, "cannot create a folder for the browser's egress sockets", err)
	}
	prof := sockproxy.Profile{
		Name: "browser",
		Ops: []sockproxy.Op{sockproxy.OpPing, sockproxy.OpVersion, sockproxy.OpList, sockproxy.OpCreate, sockproxy.OpInspect,
			sockproxy.OpStart, sockproxy.OpStop, sockproxy.OpKill, sockproxy.OpRemove},
		NetworkModes:  []string{cfg.Network},
		BindAllowlist: []string{egRoot},
	}
	proxy, err := sockproxy.ServePrivate(sockproxy.Config{Upstream: cfg.DockerHost, Profile: prof, Audit: cfg.Audit, Logger: cfg.Logger}, "talos-browser-proxy-")
	if err != nil {
		_ = os.RemoveAll(egRoot)
		return nil, err
	}
	cli, err := client.New(client.WithHost("unix://"+proxy.Socket()), client.WithAPIVersionNegotiation())
	if err != nil {
		_ = proxy.Close()
		_ = os.RemoveAll(egRoot)
		return nil, talos.E(talos.CodeDocker, op, "cannot create the Docker client", err)
	}
	b := &Browser{cfg: cfg, log: lg, proxy: proxy, egressCfg: egCfg, egressRoot: egRoot, cli: cli, sessions: map[string]*browserSession{}}
	return b, nil
}

// Close removes every session's container and stops the proxy.
func (b *Browser) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	ss := make([]*browserSession, 0, len(b.sessions))
	for _, s := range b.sessions {
		ss = append(ss, s)
	}
	b.mu.Unlock()
	for _, s := range ss {
		s.end("browser closed")
	}
	_ = b.cli.Close()
	err := b.proxy.Close()
	_ = os.RemoveAll(b.egressRoot)
	return err
}

// End removes session id's container now (a conversation that ended);
// nothing happens when it has none.
func (b *Browser) End(id string) {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s != nil {
		s.end("ended")
	}
}

// Sessions returns the ids of the running sessions; one that is ending is
// listed until its teardown (container, then egress proxy) is done, so that
// Close finds and waits for it.
func (b *Browser) Sessions() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.sessions))
	for id := range b.sessions {
		out = append(out, id)
	}
	return out
}

// ContainerID returns the container of session id, or "" when it has none.
func (b *Browser) ContainerID(id string) string {
	b.mu.Lock()
	s := b.sessions[id]
	b.mu.Unlock()
	if s == nil {
		return ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.containerID
}

// session returns the session of conversation id, making it when there is
// none (at most MaxSessions).
func (b *Browser) session(id string) (*browserSession, error) {
	const op = "genesis.Browser"
	if !sessionPattern.MatchString(id) {
		return nil, talos.Errorf(talos.CodeInputInvalid, op, "session %s refused: want [A-Za-z0-9][A-Za-z0-9_.-], at most 64 characters", redact.Value(id))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, talos.Errorf(talos.CodeSkillSandbox, op, "the browser is closed")
	}
	if s, ok := b.sessions[id]; ok {
		return s, nil
	}
	if len(b.sessions) >= b.cfg.MaxSessions {
		return nil, talos.Errorf(talos.CodeSandboxQuota, op, "%d browser sessions run already (the most allowed): wait until one is idle for %v", len(b.sessions), b.cfg.IdleTimeout)
	}
	s := &browserSession{b: b, id: id}
	b.sessions[id] = s
	return s, nil
}

// do runs f on the session's tab, starting the browser first when the
// session has none or its browser died (after the backoff), and restarts
// the idle timer afterwards.
func (b *Browser) do(ctx context.Context, id string, f func(tab context.Context) error) error {
	var s *browserSession
	for {
		var err error
		if s, err = b.session(id); err != nil {
			return err
		}
		s.mu.Lock()
		if !s.gone {
			break
		}
		// It ended (idle) between the lookup and the lock: it is no
		// longer in the map, so the next lookup makes a new one.
		s.mu.Unlock()
	}
	defer s.mu.Unlock()
	if s.timer != nil {
		s.timer.Stop()
	}
	defer s.armIdle()
	if err := s.ensure(ctx); err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(s.ctx, DefaultBrowserOpTimeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if err := f(tctx); err != nil {
		return err
	}
	s.attempts = 0
	return nil
}

// armIdle (re)starts the idle timer; s.mu is held.
func (s *browserSession) armIdle() {
	if s.gone {
		return
	}
	s.idleGen++
	gen := s.idleGen
	s.timer = time.AfterFunc(s.b.cfg.IdleTimeout, func() { s.endIdle(gen) })
}

// endIdle ends the session for idleness, unless it was used after the
// timer of arming gen fired (Stop cannot recall a callback already waiting
// for s.mu): then a later arming owns the decision.
func (s *browserSession) endIdle(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.idleGen == gen {
		s.endLocked("idle for " + s.b.cfg.IdleTimeout.String())
	}
}

// end removes the session's container and forgets the session.
func (s *browserSession) end(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endLocked(why)
}

// endLocked is end with s.mu held.
func (s *browserSession) endLocked(why string) {
	if s.gone {
		return
	}
	s.gone = true
	if s.timer != nil {
		s.timer.Stop()
	}
	s.teardown()
	s.b.mu.Lock()
	if s.b.sessions[s.id] == s {
		delete(s.b.sessions, s.id)
	}
	s.b.mu.Unlock()
	s.b.log.Info("browser session ended", "session", s.id, "why", why)
}

// teardown closes the tab and removes the container; s.mu is held.
func (s *browserSession) teardown() {
	if s.cancelTab != nil {
		s.cancelTab()
		s.cancelAlloc()
		s.cancelTab, s.cancelAlloc, s.ctx = nil, nil, nil
	}
	if s.containerID != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		zero := 0
		_, _ = s.b.cli.ContainerStop(ctx, s.containerID, client.ContainerStopOptions{Timeout: &zero})
		if _, err := s.b.cli.ContainerRemove(ctx, s.containerID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			s.b.log.Warn("browser container not removed", "container", s.containerID, "err", err)
		}
		s.containerID = ""
	}
	if s.egress != nil {
		s.egress.close()
		s.egress = nil
	}
}

// alive reports whether the session's browser answers; s.mu is held.
func (s *browserSession) alive(ctx context.Context) bool {
	if s.ctx == nil || s.ctx.Err() != nil || s.containerID == "" {
		return false
	}
	info, err := s.b.cli.ContainerInspect(ctx, s.containerID, client.ContainerInspectOptions{})
	return err == nil && info.Container.State != nil && info.Container.State.Running
}

// ensure starts the browser when the session has none, or again when the
// one started before is not alive (it died, or it never came up): then
// after a backoff of Backoff doubled for each attempt in a row, and not
// more than MaxRespawns times in a row (a successful operation resets the
// count); s.mu is held.
func (s *browserSession) ensure(ctx context.Context) error {
	const op = "genesis.Browser"
	if s.alive(ctx) {
		return nil
	}
	if s.tried {
		s.teardown()
		if s.attempts >= s.b.cfg.MaxRespawns {
			return talos.Errorf(talos.CodeSkillSandbox, op, "the browser of session %s failed %d times in a row: max respawns exceeded; end the session or check the browser image",
				redact.Value(s.id), s.attempts+1)
		}
		wait := s.b.cfg.Backoff << s.attempts
		s.attempts++
		s.b.log.Warn("browser not alive; starting it again", "session", s.id, "attempt", s.attempts, "backoff", wait)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return talos.E(talos.CodeSkillSandbox, op, "waiting to respawn the browser was cancelled", ctx.Err())
		case <-t.C:
		}
	}
	s.tried = true
	return s.spawn(ctx)
}

// spawn creates and starts the container and connects to its DevTools;
// s.mu is held.
func (s *browserSession) spawn(ctx context.Context) error {
	const op = "genesis.Browser.spawn"
	b := s.b
	rb := make([]byte, 4)
	_, _ = rand.Read(rb)
	name := "talos-browser-" + strings.ToLower(strings.NewReplacer("_", "-", ".", "-").Replace(s.id)) + "-" + hex.EncodeToString(rb)
	eg, err := startBrowserEgress(b.egressCfg, b.egressRoot, b.log)
	if err != nil {
		return err
	}
	s.egress = eg
	// DevTools is relayed to the network for Talos; the egress proxy's
	// socket to the container's loopback, where Chromium sends every
	// request (<-loopback> so not even localhost goes around it).
	launch := "socat TCP-LISTEN:" + strconv.Itoa(BrowserDevToolsPort) + ",fork,reuseaddr TCP:127.0.0.1:9222 & " +
		"socat TCP-LISTEN:" + browserEgressPort + ",bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:" + browserEgressMount + "/" + browserEgressSock + " & " +
		"exec /usr/lib/chromium/chromium --headless --no-sandbox --disable-gpu --disable-dev-shm-usage --no-first-run " +
		"--no-default-browser-check --disable-background-networking --disable-component-update --disable-sync " +
		"--disable-extensions --disable-quic --proxy-server=http://127.0.0.1:" + browserEgressPort + " --proxy-bypass-list='<-loopback>' " +
		"--user-data-dir=/tmp/profile --remote-debugging-port=9222 about:blank"
	pids := int64(BrowserPids)
	withInit := true
	res, err := b.cli.ContainerCreate(context.WithoutCancel(ctx), client.ContainerCreateOptions{
		Name: name,
		Config: &container.Config{
			Image:  b.cfg.Image,
			Cmd:    []string{"/bin/sh", "-c", launch},
			User:   "65534:65534",
			Env:    []string{"HOME=/tmp", "TMPDIR=/tmp", "LANG=C.UTF-8"},
			Labels: browserLabels(b.cfg.Labels, s.id),
		},
		HostConfig: &container.HostConfig{
			NetworkMode:    container.NetworkMode(b.cfg.Network),
			ReadonlyRootfs: true,
			CapDrop:        []string{"ALL"},
			SecurityOpt:    []string{"no-new-privileges"},
			Tmpfs:          map[string]string{"/tmp": BrowserTmpfs},
			Binds:          []string{eg.dir + ":" + browserEgressMount + ":ro"},
			Init:           &withInit,
			Resources: container.Resources{
				Memory:     BrowserMemory,
				MemorySwap: BrowserMemory,
				NanoCPUs:   BrowserNanoCPUs,
				PidsLimit:  &pids,
			},
		},
	})
	if err != nil {
		s.teardown()
		return talos.E(talos.CodeDocker, op, "cannot create the browser container (is the image "+redact.Value(b.cfg.Image)+" built?)", err)
	}
	s.containerID = res.ID
	if _, err := b.cli.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
		s.teardown()
		return talos.E(talos.CodeDocker, op, "cannot start the browser container", err)
	}
	info, err := b.cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		s.teardown()
		return talos.E(talos.CodeDocker, op, "cannot inspect the browser container", err)
	}
	if st := info.Container.State; st != nil && !st.Running {
		s.teardown()
		return talos.Errorf(talos.CodeSkillSandbox, op, "the browser container stopped at once: it is %s (exit code %d)", st.Status, st.ExitCode)
	}
	var ip netip.Addr
	if info.Container.NetworkSettings != nil {
		if ep := info.Container.NetworkSettings.Networks[b.cfg.Network]; ep != nil {
			ip = ep.IPAddress
		}
	}
	if !ip.IsValid() {
		s.teardown()
		return talos.Errorf(talos.CodeDocker, op, "the browser container has no address on the network %s", redact.Value(b.cfg.Network))
	}
	devtools := "http://" + net.JoinHostPort(ip.String(), strconv.Itoa(BrowserDevToolsPort))
	exited := func() error {
		info, err := b.cli.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
		if err != nil {
			return err
		}
		if st := info.Container.State; st != nil && !st.Running {
			return fmt.Errorf("the browser container is %s (exit code %d)", st.Status, st.ExitCode)
		}
		return nil
	}
	if err := waitDevTools(ctx, devtools, exited); err != nil {
		s.teardown()
		return talos.E(talos.CodeSkillSandbox, op, "the browser did not open its DevTools port", err)
	}
	actx, cancelAlloc := remote.NewAllocator(context.Background(), devtools+"/")
	tctx, cancelTab := chromedp.NewContext(actx)
	if err := chromedp.Do(tctx); err != nil {
		cancelTab()
		cancelAlloc()
		s.teardown()
		return talos.E(talos.CodeSkillSandbox, op, "cannot connect to the browser's DevTools", err)
	}
	s.ctx, s.cancelTab, s.cancelAlloc = tctx, cancelTab, cancelAlloc
	b.log.Info("browser session started", "session", s.id, "container", res.ID[:12])
	return nil
}

// waitDevTools polls base/json/version until it answers 200, and stops
// early when exited reports that the container is gone.
func waitDevTools(ctx context.Context, base string, exited func() error) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultBrowserStartWait)
	defer cancel()
	hc := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/json/version", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		} else if xerr := exited(); xerr != nil {
			return xerr
		}
		t := time.NewTimer(50 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			if err == nil {
				err = fmt.Errorf("DevTools answered %d", resp.StatusCode)
			}
			return fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// Navigate opens rawURL in session id's tab (the URL must pass the web
// allowlist: http or https, an approved host, on port 80 or 443 unless its
// entry names the port, as the session's egress proxy decides) and returns
// the page's title and URL.
func (b *Browser) Navigate(ctx context.Context, id, rawURL string) (title, at string, err error) {
	const op = "genesis.Browser.Navigate"
	u, perr := url.Parse(rawURL)
	if perr != nil || len(rawURL) > 2048 {
		return "", "", talos.Errorf(talos.CodeInputInvalid, op, "url %s is not a valid URL of at most 2048 bytes", redact.Value(rawURL))
	}
	if err := b.cfg.Web.checkURL(u); err != nil {
		return "", "", err
	}
	err = b.do(ctx, id, func(tab context.Context) error {
		if err := chromedp.Do(tab, chromedp.Navigate(u.String())); err != nil {
			return err
		}
		var err error
		if title, err = chromedp.Run(tab, chromedp.Title()); err != nil {
			return err
		}
		at, err = chromedp.Run(tab, chromedp.Location())
		return err
	})
	if err != nil {
		return "", "", wrapBrowser(op, "navigation failed", err)
	}
	return title, at, nil
}

// BrowserPage is what a read of a session's page returned.
type BrowserPage struct {
	URL   string
	Title string
	// Text is the visible text (innerText of the body; runs of white
	// space folded to one space, blank lines dropped), at most
	// MaxBrowserTextBytes.
	Text      string
	Truncated bool // Text was cut
}

// Read returns the URL, title and visible text of session id's page.
func (b *Browser) Read(ctx context.Context, id string) (BrowserPage, error) {
	const op = "genesis.Browser.Read"
	var p BrowserPage
	err := b.do(ctx, id, func(tab context.Context) error {
		var err error
		if p.Text, err = chromedp.Run(tab, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`)); err != nil {
			return err
		}
		if p.Title, err = chromedp.Run(tab, chromedp.Title()); err != nil {
			return err
		}
		p.URL, err = chromedp.Run(tab, chromedp.Location())
		return err
	})
	if err != nil {
		return BrowserPage{}, wrapBrowser(op, "reading the page failed", err)
	}
	p.Text = readable(strings.ToValidUTF8(p.Text, "\uFFFD"))
	if len(p.Text) > MaxBrowserTextBytes {
		cut := MaxBrowserTextBytes
		for cut > 0 && !utf8.RuneStart(p.Text[cut]) {
			cut--
		}
		p.Text, p.Truncated = p.Text[:cut], true
	}
	return p, nil
}

// Screenshot returns a PNG of session id's whole page.
func (b *Browser) Screenshot(ctx context.Context, id string) ([]byte, error) {
	const op = "genesis.Browser.Screenshot"
	var png []byte
	err := b.do(ctx, id, func(tab context.Context) error {
		var err error
		png, err = chromedp.Run(tab, chromedp.FullScreenshot(100))
		return err
	})
	if err != nil {
		return nil, wrapBrowser(op, "the screenshot failed", err)
	}
	return png, nil
}

// Click clicks the first element matching the CSS selector in session
// id's page.
func (b *Browser) Click(ctx context.Context, id, selector string) error {
	const op = "genesis.Browser.Click"
	if err := checkSelector(op, selector); err != nil {
		return err
	}
	err := b.do(ctx, id, func(tab context.Context) error {
		return chromedp.Do(tab, chromedp.Click(chromedp.CSS(selector)))
	})
	return wrapBrowser(op, "the click on "+redact.Value(selector)+" failed", err)
}

// Fill sets the value of the first form field matching the CSS selector
// in session id's page.
func (b *Browser) Fill(ctx context.Context, id, selector, value string) error {
	const op = "genesis.Browser.Fill"
	var problems []error
	if err := checkSelector(op, selector); err != nil {
		problems = append(problems, err)
	}
	if len(value) > MaxFillBytes || !utf8.ValidString(value) {
		problems = append(problems, fmt.Errorf("value: %d bytes; want valid UTF-8 of at most %d bytes", len(value), MaxFillBytes))
	}
	if len(problems) > 0 {
		return talos.E(talos.CodeInputInvalid, op, "fill refused", joinErrs(problems))
	}
	err := b.do(ctx, id, func(tab context.Context) error {
		return chromedp.Do(tab, chromedp.SetValue(chromedp.CSS(selector), value))
	})
	return wrapBrowser(op, "filling "+redact.Value(selector)+" failed", err)
}

func checkSelector(op, sel string) error {
	if sel == "" || len(sel) > MaxSelectorBytes || !utf8.ValidString(sel) {
		return talos.Errorf(talos.CodeInputInvalid, op, "selector %s: want a CSS selector of 1 to %d bytes", redact.Value(sel), MaxSelectorBytes)
	}
	return nil
}

// wrapBrowser keeps a talos error as it is and gives anything else code
// T302 (the browser failed).
func wrapBrowser(op, msg string, err error) error {
	if err == nil {
		return nil
	}
	var te *talos.Error
	if errors.As(err, &te) {
		return err
	}
	return talos.E(talos.CodeSkillSandbox, op, msg, err)
}

// readable folds white space (non-breaking spaces included) within each
// line and drops blank lines.
func readable(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	return strings.Join(out, "\n")
}

// Browser actions of browser_automation.
const (
	BrowserNavigate   = "navigate"
	BrowserReadText   = "read_text"
	BrowserScreenshot = "screenshot"
	BrowserClick      = "click"
	BrowserFill       = "fill"
)

// DefaultBrowserSession is the session a call without a conversation uses.
const DefaultBrowserSession = "default"

// WithBrowser lets the Runner run browser_automation (when it is active):
// b drives the browsers; a page read is handed to the skill read-only in a
// folder of its own made under dir (beneath the sandbox's WorkspaceDir)
// and removed after the call; screenshots are written as PNG files into
// shots; session returns the conversation a call belongs to (one browser
// per conversation; nil or "" means DefaultBrowserSession). It returns r.
func (r *Runner) WithBrowser(b *Browser, dir, shots string, session func(context.Context) string) *Runner {
	r.browser, r.browserDir, r.shotsDir, r.sessionOf = b, dir, shots, session
	return r
}

// BrowserRequest is one browser_automation call.
type BrowserRequest struct {
	Action   string // navigate, read_text, screenshot, click or fill
	URL      string // navigate
	Selector string // click, fill: a CSS selector
	Value    string // fill
}

// BrowserCall runs one browser_automation action in the conversation's
// browser and returns the text for the model: a page read is turned into
// a report by the skill in a fresh sandbox container (no network, no
// browser access); a screenshot is saved under the screenshots folder and
// its file name returned. Bad requests are refused before the browser is
// asked (code T015); a URL off the allowlist is code T406.
func (r *Runner) BrowserCall(ctx context.Context, req BrowserRequest) (string, error) {
	const op = "genesis.Runner.BrowserCall"
	s, err := r.skill(op, BrowserAutomation)
	if err != nil {
		return "", err
	}
	if r.browser == nil || r.browserDir == "" {
		return "", talos.Errorf(talos.CodePolicyDenied, op, "browser_automation has no browser configured")
	}
	id := DefaultBrowserSession
	if r.sessionOf != nil {
		if v := r.sessionOf(ctx); v != "" {
			id = v
		}
	}
	var problems []error
	extra := func(field, v string) {
		if v != "" {
			problems = append(problems, fmt.Errorf("%s %s: %s takes no %s", field, redact.Value(v), req.Action, field))
		}
	}
	switch req.Action {
	case BrowserNavigate:
		extra("selector", req.Selector)
		extra("value", req.Value)
	case BrowserReadText, BrowserScreenshot:
		extra("url", req.URL)
		extra("selector", req.Selector)
		extra("value", req.Value)
	case BrowserClick:
		extra("url", req.URL)
		extra("value", req.Value)
	case BrowserFill:
		extra("url", req.URL)
	default:
		problems = append(problems, fmt.Errorf("action %s: want %s, %s, %s, %s or %s", redact.Value(req.Action),
			BrowserNavigate, BrowserReadText, BrowserScreenshot, BrowserClick, BrowserFill))
	}
	if len(problems) > 0 {
		return "", talos.E(talos.CodeInputInvalid, op, "browser_automation request refused", joinErrs(problems))
	}
	switch req.Action {
	case BrowserNavigate:
		title, at, err := r.browser.Navigate(ctx, id, req.URL)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("opened %s (title %s); call read_text for its text", at, redact.Value(title)), nil
	case BrowserClick:
		if err := r.browser.Click(ctx, id, req.Selector); err != nil {
			return "", err
		}
		return "clicked " + redact.Value(req.Selector), nil
	case BrowserFill:
		if err := r.browser.Fill(ctx, id, req.Selector, req.Value); err != nil {
			return "", err
		}
		return "filled " + redact.Value(req.Selector), nil
	case BrowserScreenshot:
		png, err := r.browser.Screenshot(ctx, id)
		if err != nil {
			return "", err
		}
		if err := os.MkdirAll(r.shotsDir, 0o755); err != nil {
			return "", talos.E(talos.CodeDirPermissions, op, "cannot create "+r.shotsDir, err)
		}
		name := fmt.Sprintf("%s-%s.png", id, time.Now().UTC().Format("20060102T150405.000"))
		if err := os.WriteFile(filepath.Join(r.shotsDir, name), png, 0o644); err != nil {
			return "", talos.E(talos.CodeDirPermissions, op, "cannot write the screenshot", err)
		}
		return fmt.Sprintf("saved a screenshot of the page (%d bytes PNG) as %s", len(png), name), nil
	}
	page, err := r.browser.Read(ctx, id)
	if err != nil {
		return "", err
	}
	cut := "0"
	if page.Truncated {
		cut = "1"
	}
	in := fmt.Sprintf("url %s\ntitle %s\ncut %s\ntext %s\n", b64(page.URL), b64(page.Title), cut, b64(page.Text))
	dir, err := handOver(op, r.browserDir, "page-", "page", []byte(in))
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	res, err := r.sb.Run(ctx, sandbox.Request{Dir: s.Record.ActivePath, Hash: s.Record.Hash, Args: []string{BrowserReadText}, Workspace: dir})
	if err != nil {
		return "", err
	}
	if !res.Verdict.Passed() {
		return "", talos.Errorf(talos.CodeSkillSandbox, op, "browser_automation failed: %s", res.Verdict.Reason)
	}
	return strings.TrimRight(string(res.Stdout), "\n"), nil
}
