package mcphost

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	talos "github.com/talos-ironclad/talos"
)

// ProtocolVersion is the MCP revision the host asks for. It is the newest
// revision with the initialize handshake, which every server released so far
// speaks; servers answering with an older revision are accepted.
const ProtocolVersion = mcp.ProtocolVersion20251125

// reToolName is the MCP specification's tool name: 1–128 characters of
// A-Z a-z 0-9 _ - . (anything else could not be called by name, and could
// break the catalog's lines).
var reToolName = regexp.MustCompile(`^[A-Za-z0-9_.-]{1,128}$`)

// Limits on what one server may offer, so a hostile server cannot exhaust
// the host with endless pages.
const (
	// MaxToolsPerServer is the most tools kept from one server.
	MaxToolsPerServer = 512
	// MaxListPages is the most tools/list pages followed for one server.
	MaxListPages = 64
)

// Host runs the configured MCP servers, keeps their tool definitions pinned
// and passes every call through the invocation pipeline. It is safe for
// concurrent use.
type Host struct {
	cfg     Config
	log     *slog.Logger
	pins    PinStore
	audit   Auditor
	scanner ResultScanner
	hooks   Hooks
	secrets *SecretScanner
	maxRes  int
	order   []*srv
	byName  map[string]*srv

	runCtx context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
	stats  stats

	mu      sync.Mutex // guards started, closed, owners and procs
	started bool
	closed  bool
	owners  map[string]string        // lower-case tool name → server owning it
	procs   map[*client.Client]*proc // stdio client → its server's process
}

// srv is the runtime state of one server.
type srv struct {
	r        resolved
	name     string
	identity string
	refresh  chan struct{}

	connMu sync.Mutex // serialises starting this server (no host-wide lock)
	// pinMu serialises reading the pins and acting on them (apply, Approve,
	// ReloadApprovals): a re-listing that read the pins before an approval
	// saved new ones would otherwise quarantine the server again right
	// after the operator released it. Taken before mu.
	pinMu sync.Mutex
	// listed numbers the listings of this server as they start; applied
	// (under pinMu) is the newest one applied. A listing that started
	// before one already applied is out of date and dropped, so it cannot
	// bring back definitions the server no longer offers.
	listed  atomic.Uint64
	applied uint64

	mu         sync.Mutex
	client     *client.Client
	live       map[string]ToolDef // last definitions the server offered
	approved   map[string]ToolDef // pinned definitions the server still offers
	previous   map[string]ToolDef // approved definitions known in this process, for diffs
	quarantine *Diff              // non-nil: quarantined with this diff
	quarReason string
	failures   int
	retryAt    time.Time
	gaveUp     bool
	lastErr    error
}

// New validates cfg (every problem at once) and builds a Host. It starts
// nothing; call Start. Every collaborator may be nil: pins keeps approved
// tool definitions (nil means a new MemoryPins); auditor receives the shape
// of every call (nil records nothing); scanner inspects every result before
// it is returned (the firewall plugs in here, scanning as Source: tool; nil
// skips that step); hooks run before and after every call (nil functions
// are skipped).
func New(cfg Config, pins PinStore, auditor Auditor, scanner ResultScanner, hooks Hooks) (*Host, error) {
	rs, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	h := &Host{
		cfg:     cfg,
		log:     cfg.Logger,
		pins:    pins,
		audit:   auditor,
		scanner: scanner,
		hooks:   hooks,
		secrets: NewSecretScanner(cfg.Secrets),
		maxRes:  cfg.MaxResultBytes,
		byName:  map[string]*srv{},
		owners:  map[string]string{},
		procs:   map[*client.Client]*proc{},
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.pins == nil {
		h.pins = NewMemoryPins()
	}
	if h.maxRes == 0 {
		h.maxRes = DefaultMaxResultBytes
	}
	for _, r := range rs {
		s := &srv{r: r, name: r.cfg.Name, identity: identity(r), refresh: make(chan struct{}, 1)}
		h.order = append(h.order, s)
		h.byName[s.name] = s
	}
	h.runCtx, h.stop = context.WithCancel(context.Background())
	return h, nil
}

// identity names a server for pinning: its name and, for a stdio server,
// the command and arguments it runs. Changing either is a new identity with
// no pins.
func identity(r resolved) string {
	var what string
	switch r.transport {
	case TransportInProcess:
		return "inprocess:" + r.cfg.Name
	case TransportStdio:
		what = r.path + "\x00" + strings.Join(r.cfg.Args, "\x00")
	default:
		what = r.cfg.URL
	}
	sum := sha256.Sum256([]byte(what))
	return r.transport + ":" + r.cfg.Name + ":" + hex.EncodeToString(sum[:8])
}

// Start discovers the tools of every enabled server, including those
// without auto_start (they are started, listed and stopped again, so the
// catalog knows their tools). It returns the servers that failed discovery
// joined in one error; the host keeps serving the others either way.
func (h *Host) Start(ctx context.Context) error {
	h.mu.Lock()
	if h.started || h.closed {
		h.mu.Unlock()
		return talos.Errorf(talos.CodeMCPServer, "mcphost.Start", "the host was already started or closed: build a new Host")
	}
	h.started = true
	h.mu.Unlock()

	for _, s := range h.order {
		h.wg.Add(1)
		go h.refresher(s)
	}
	errs := make([]error, len(h.order))
	var wg sync.WaitGroup
	for i, s := range h.order {
		wg.Go(func() {
			errs[i] = h.discover(ctx, s)
			if !s.r.cfg.AutoStart {
				h.disconnect(s)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// discover connects s if needed, lists its tools and applies them.
func (h *Host) discover(ctx context.Context, s *srv) error {
	c, err := h.conn(ctx, s)
	if err != nil {
		return err
	}
	return h.listAndApply(ctx, s, c)
}

func (h *Host) listAndApply(ctx context.Context, s *srv, c *client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, s.r.timeout)
	defer cancel()
	gen := s.listed.Add(1)
	tools, err := listTools(ctx, c)
	if err != nil {
		h.failed(s, c, err)
		return talos.E(talos.CodeMCPServer, "mcphost.discover", fmt.Sprintf("listing the tools of server %s failed", s.name), err)
	}
	live := map[string]ToolDef{}
	dup := ""
	for _, t := range tools {
		if !reToolName.MatchString(t.Name) {
			h.log.Warn("mcphost: tool skipped: its name is not 1–128 of A-Z a-z 0-9 _ - .", "server", s.name, "tool", clip(t.Name))
			continue
		}
		d, err := toolDef(s.name, t)
		if err != nil {
			h.log.Warn("mcphost: tool definition skipped", "server", s.name, "tool", t.Name, "err", err)
			continue
		}
		if _, seen := live[t.Name]; seen {
			if dup == "" {
				dup = "the server offers two tools named " + clip(t.Name)
			}
			continue
		}
		live[t.Name] = d
	}
	return h.apply(ctx, s, live, gen, dup)
}

// listTools follows tools/list pages, within MaxListPages and
// MaxToolsPerServer.
func listTools(ctx context.Context, c *client.Client) ([]mcp.Tool, error) {
	var out []mcp.Tool
	var req mcp.ListToolsRequest
	seen := map[mcp.Cursor]bool{}
	for page := 0; ; page++ {
		if page >= MaxListPages {
			return nil, fmt.Errorf("more than %d pages of tools", MaxListPages)
		}
		res, err := c.ListToolsByPage(ctx, req)
		if err != nil {
			return nil, err
		}
		out = append(out, res.Tools...)
		if len(out) > MaxToolsPerServer {
			return nil, fmt.Errorf("more than %d tools", MaxToolsPerServer)
		}
		if res.NextCursor == "" {
			return out, nil
		}
		if seen[res.NextCursor] {
			return nil, errors.New("the server repeated a page cursor")
		}
		seen[res.NextCursor] = true
		req.Params.Cursor = res.NextCursor
	}
}

// apply compares freshly listed definitions with the pins: first contact
// pins them (unless approval is required), an addition or change
// quarantines the server, and the approved set is what stays pinned.
// gen is the listing's number (srv.listed); dup, if not empty, says why
// the listing itself quarantines the server (two tools of one name).
func (h *Host) apply(ctx context.Context, s *srv, live map[string]ToolDef, gen uint64, dup string) error {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	if gen < s.applied {
		return nil // a listing that started later was applied already
	}
	s.applied = gen
	if dup != "" {
		h.quarantineNow(s, dup)
	}
	pins, found, err := h.pins.LoadPins(ctx, s.identity)
	if err != nil {
		h.quarantineNow(s, "the pin store failed: "+err.Error())
		return talos.E(talos.CodeMCPServer, "mcphost.discover", "loading the pins of server "+s.name+" failed; the server is quarantined", err)
	}
	s.mu.Lock()
	err = h.applyLocked(ctx, s, pins, found, live)
	s.mu.Unlock()
	h.rebuildOwners()
	return err
}

// applyLocked is apply's work, with s.mu held.
func (h *Host) applyLocked(ctx context.Context, s *srv, pins map[string]string, found bool, live map[string]ToolDef) error {
	s.live = live
	if !found && s.previous == nil && !h.cfg.RequireApproval {
		pins = map[string]string{}
		for n, d := range live {
			pins[n] = d.Hash
		}
		if err := h.pins.SavePins(ctx, s.identity, pins); err != nil {
			s.quarantine, s.quarReason = &Diff{}, "the pin store failed: "+err.Error()
			return talos.E(talos.CodeMCPServer, "mcphost.discover", "saving the pins of server "+s.name+" failed; the server is quarantined", err)
		}
		found = true
		h.log.Info("mcphost: tool definitions pinned on first contact", "server", s.name, "tools", len(live))
	}
	d := diff(pins, live)
	for i, c := range d.Changed {
		if old, ok := s.previous[c.Name]; ok {
			d.Changed[i].Old = old
		}
	}
	approved := map[string]ToolDef{}
	for n, t := range live {
		if pins[n] == t.Hash {
			approved[n] = t
		}
	}
	s.approved = approved
	if s.previous == nil {
		s.previous = approved
	}
	if d.Suspicious() || !found {
		if s.quarantine == nil {
			h.log.Warn("mcphost: server quarantined: its tool definitions differ from the approved ones; review and approve them",
				"server", s.name, "added", len(d.Added), "changed", len(d.Changed), "removed", len(d.Removed))
		}
		s.quarantine = &d
		if s.quarReason == "" {
			s.quarReason = describeDiff(d, !found)
		}
	}
	return nil
}

func describeDiff(d Diff, unapproved bool) string {
	if unapproved {
		return "its tools were never approved"
	}
	var parts []string
	if n := len(d.Added); n > 0 {
		parts = append(parts, fmt.Sprintf("%d tool(s) added", n))
	}
	if n := len(d.Changed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d tool definition(s) changed", n))
	}
	if n := len(d.Removed); n > 0 {
		parts = append(parts, fmt.Sprintf("%d removed", n))
	}
	return strings.Join(parts, ", ") + " since approval"
}

// quarantineNow puts s in quarantine for reason.
func (h *Host) quarantineNow(s *srv, reason string) {
	s.mu.Lock()
	if s.quarantine == nil {
		s.quarantine = &Diff{}
	}
	if s.quarReason == "" {
		s.quarReason = reason
	}
	s.mu.Unlock()
	h.log.Warn("mcphost: server quarantined", "server", s.name, "reason", reason)
	h.rebuildOwners()
}

// rebuildOwners recomputes which server owns each tool name: the earliest
// server (config order) offering an approved tool of that name (compared
// without case). Callers hold no s.mu (lock order: pinMu, then h.mu, then
// s.mu; apply and Approve call it with pinMu held).
func (h *Host) rebuildOwners() {
	h.mu.Lock()
	defer h.mu.Unlock()
	owners := map[string]string{}
	for _, s := range h.order {
		s.mu.Lock()
		names := sortedKeys(s.approved)
		s.mu.Unlock()
		for _, n := range names {
			k := strings.ToLower(n)
			if _, taken := owners[k]; !taken {
				owners[k] = s.name
			}
		}
	}
	h.owners = owners
}

// refresher re-lists the tools of s whenever it announces a change, until
// the host closes. Notifications are coalesced: a flood causes at most one
// listing at a time.
func (h *Host) refresher(s *srv) {
	defer h.wg.Done()
	for {
		select {
		case <-h.runCtx.Done():
			return
		case <-s.refresh:
		}
		s.mu.Lock()
		c := s.client
		s.mu.Unlock()
		if c == nil {
			continue
		}
		if err := h.listAndApply(h.runCtx, s, c); err != nil {
			h.log.Warn("mcphost: re-listing tools after list_changed failed", "server", s.name, "err", err)
		}
	}
}

// conn returns a connected, initialized client for s, starting the server
// if needed (after the backoff of its previous failures).
func (h *Host) conn(ctx context.Context, s *srv) (*client.Client, error) {
	const op = "mcphost.conn"
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.mu.Lock()
	c, gaveUp, wait, last := s.client, s.gaveUp, time.Until(s.retryAt), s.lastErr
	s.mu.Unlock()
	if c != nil {
		return c, nil
	}
	if gaveUp {
		return nil, talos.E(talos.CodeMCPServer, op, fmt.Sprintf("server %s failed %d times in a row (max_retries %d) and is no longer restarted; fix it and call Reset", s.name, s.r.maxRetries+1, s.r.maxRetries), last)
	}
	if h.runCtx.Err() != nil {
		return nil, talos.Errorf(talos.CodeMCPServer, op, "the host is closed")
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, talos.E(talos.CodeMCPServer, op, fmt.Sprintf("server %s is waiting %s before its next restart", s.name, wait.Round(time.Millisecond)), ctx.Err())
		}
	}
	c, err := h.dial(ctx, s)
	if err != nil {
		h.failed(s, nil, err)
		return nil, talos.E(talos.CodeMCPServer, op, "starting server "+s.name+" failed", err)
	}
	s.mu.Lock()
	if h.runCtx.Err() != nil { // Close ran while we started it: it must not outlive the host
		s.mu.Unlock()
		_ = h.closeClient(c)
		return nil, talos.Errorf(talos.CodeMCPServer, op, "the host is closed")
	}
	s.client = c
	s.mu.Unlock()
	return c, nil
}

// dial starts and initializes one client for s.
func (h *Host) dial(ctx context.Context, s *srv) (*client.Client, error) {
	var (
		c  *client.Client
		pr *proc
	)
	switch s.r.transport {
	case TransportInProcess:
		var err error
		if c, err = client.NewInProcessClient(s.r.cfg.InProcess); err != nil {
			return nil, err
		}
	case TransportHTTP:
		tr, err := transport.NewStreamableHTTP(s.r.cfg.URL,
			transport.WithHTTPHeaders(s.r.cfg.Headers),
			transport.WithContinuousListening(), // server notifications (list_changed) arrive on a GET stream
			transport.WithHTTPLogger(h.log))
		if err != nil {
			return nil, err
		}
		c = client.NewClient(tr, client.WithProtocolVersion(ProtocolVersion))
	case TransportSSE:
		tr, err := transport.NewSSE(s.r.cfg.URL, transport.WithHeaders(s.r.cfg.Headers), transport.WithSSELogger(h.log))
		if err != nil {
			return nil, err
		}
		c = client.NewClient(tr, client.WithProtocolVersion(ProtocolVersion))
	default:
		var err error
		if pr, err = startProc(s.r.path, s.r.cfg.Args, s.r.env, &stderrLog{log: h.log, server: s.name}); err != nil {
			return nil, err
		}
		// The transport only frames JSON-RPC; the process (and its shutdown
		// ladder) is ours.
		c = client.NewClient(transport.NewIO(pr.stdout, pr.stdin, nil), client.WithProtocolVersion(ProtocolVersion))
		h.mu.Lock()
		h.procs[c] = pr
		h.mu.Unlock()
	}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationToolsListChanged) {
			select {
			case s.refresh <- struct{}{}:
			default: // a refresh is already pending
			}
		}
	})
	ictx, cancel := context.WithTimeout(ctx, s.r.timeout)
	defer cancel()
	// Start lives as long as the host (an SSE stream, a process), but must
	// not hang the caller: it is bounded by the timeout like initialize.
	started := make(chan error, 1)
	go func() { started <- c.Start(h.runCtx) }()
	select {
	case err := <-started:
		if err != nil {
			_ = h.closeClient(c)
			return nil, err
		}
	case <-ictx.Done():
		_ = h.closeClient(c)
		<-started
		return nil, fmt.Errorf("the transport did not start within %s", s.r.timeout)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = ProtocolVersion
	req.Params.ClientInfo = mcp.Implementation{Name: "talos", Version: "1"}
	if _, err := c.Initialize(ictx, req); err != nil {
		h.closeAsync(c)
		if ictx.Err() != nil {
			return nil, fmt.Errorf("no answer to initialize within %s", s.r.timeout)
		}
		return nil, fmt.Errorf("initialize: %w", err)
	}
	h.log.Info("mcphost: server connected", "server", s.name)
	return c, nil
}

// failed records a failure of s (start failure, crash or timeout): the
// client c, if it is still the current one, is dropped and closed, and the
// next start waits BaseRetryDelay doubled per consecutive failure. After
// more than max_retries failures in a row the host gives up on s. A client
// that is no longer the current one failed as a consequence of what ended
// it (a failure already counted, or a deliberate disconnect): nothing is
// counted again.
func (h *Host) failed(s *srv, c *client.Client, err error) {
	s.mu.Lock()
	if c != nil && s.client != c {
		s.mu.Unlock()
		h.log.Debug("mcphost: a replaced or disconnected client failed", "server", s.name, "err", err)
		return
	}
	h.stats.failure()
	if c != nil {
		s.client = nil
	}
	s.failures++
	s.lastErr = err
	delay := BaseRetryDelay << min(s.failures-1, 10)
	delay = min(delay, MaxRetryDelay)
	s.retryAt = time.Now().Add(delay)
	if s.failures > s.r.maxRetries {
		s.gaveUp = true
	}
	gave, n := s.gaveUp, s.failures
	s.mu.Unlock()
	if c != nil {
		h.closeAsync(c)
	}
	if gave {
		h.log.Error("mcphost: server failed too often; not restarting it", "server", s.name, "failures", n, "err", err)
	} else {
		h.log.Warn("mcphost: server failed; it restarts on next use", "server", s.name, "failures", n, "retry_in", delay, "err", err)
	}
}

// succeeded resets the failure count of s.
func (s *srv) succeeded() {
	s.mu.Lock()
	s.failures, s.lastErr = 0, nil
	s.mu.Unlock()
}

// closeAsync closes c in the background (a stdio server's shutdown takes
// up to its grace periods: stdin closed, then SIGTERM, then SIGKILL).
func (h *Host) closeAsync(c *client.Client) {
	if h.runCtx.Err() != nil { // Close is waiting for h.wg: close here instead
		_ = h.closeClient(c)
		return
	}
	h.wg.Go(func() { _ = h.closeClient(c) })
}

// closeClient closes c; for a stdio server it then runs the shutdown
// ladder (stdin closed, SIGTERM, SIGKILL, then the process group) and waits
// for the process.
func (h *Host) closeClient(c *client.Client) error {
	err := c.Close()
	h.mu.Lock()
	pr, ok := h.procs[c]
	delete(h.procs, c)
	h.mu.Unlock()
	if ok {
		pr.stop()
		if pr.stdout.exceeded.Load() {
			h.log.Warn("mcphost: a stdio server wrote a message over the size limit; its connection was closed", "limit_bytes", MaxMessageBytes)
		}
	}
	return err
}

// disconnect stops the running server of s, if any, and waits for it.
func (h *Host) disconnect(s *srv) {
	s.mu.Lock()
	c := s.client
	s.client = nil
	s.mu.Unlock()
	if c != nil {
		if err := h.closeClient(c); err != nil {
			h.log.Debug("mcphost: server exited with an error", "server", s.name, "err", err)
		}
	}
}

// Reset forgets the failures of server name so it is started again at its
// next use, after the host gave up on it.
func (h *Host) Reset(name string) error {
	s, ok := h.byName[name]
	if !ok {
		return unknownServer("mcphost.Reset", name)
	}
	s.mu.Lock()
	s.failures, s.gaveUp, s.retryAt, s.lastErr = 0, false, time.Time{}, nil
	s.mu.Unlock()
	return nil
}

// Refresh re-lists the tools of server name now (starting it if needed).
func (h *Host) Refresh(ctx context.Context, name string) error {
	s, ok := h.byName[name]
	if !ok {
		return unknownServer("mcphost.Refresh", name)
	}
	err := h.discover(ctx, s)
	if !s.r.cfg.AutoStart {
		h.disconnect(s)
	}
	return err
}

// Pending returns the quarantine diff of server name and why it is
// quarantined; ok is false when the server is not quarantined.
func (h *Host) Pending(name string) (d Diff, reason string, ok bool) {
	s, found := h.byName[name]
	if !found {
		return Diff{}, "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.quarantine == nil {
		return Diff{}, "", false
	}
	d = *s.quarantine
	d.Fingerprint = fingerprint(s.live)
	return d, s.quarReason, true
}

// Approve pins the definitions server name offers and lifts its
// quarantine: the operator's decision after reviewing Pending. fingerprint
// is the reviewed Diff's Fingerprint; if the server's definitions changed
// since, nothing is approved and the error says to review again.
func (h *Host) Approve(ctx context.Context, name, fingerprint string) error {
	const op = "mcphost.Approve"
	s, ok := h.byName[name]
	if !ok {
		return unknownServer(op, name)
	}
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	s.mu.Lock()
	live := s.live
	s.mu.Unlock()
	if live == nil {
		return talos.Errorf(talos.CodeMCPServer, op, "server %s has no discovered tools to approve: start the host or call Refresh first", name)
	}
	if now := fingerprintOf(live); fingerprint != now {
		return talos.Errorf(talos.CodePolicyDenied, op, "the tool definitions of server %s are %s now, not the reviewed %s: review Pending again and approve what it shows", name, now, clip(fingerprint))
	}
	pins := map[string]string{}
	for n, d := range live {
		pins[n] = d.Hash
	}
	if err := h.pins.SavePins(ctx, s.identity, pins); err != nil {
		return talos.E(talos.CodeMCPServer, "mcphost.Approve", "saving the pins of server "+name+" failed; it stays quarantined", err)
	}
	s.mu.Lock()
	s.release(live)
	s.mu.Unlock()
	h.rebuildOwners()
	h.log.Info("mcphost: tool definitions approved", "server", name, "tools", len(live))
	return nil
}

// release makes live the approved definitions and lifts the quarantine;
// s.mu is held (the caller rebuilds the tool owners afterwards).
func (s *srv) release(live map[string]ToolDef) {
	s.approved, s.previous = live, live
	s.quarantine, s.quarReason = nil, ""
}

// fingerprintOf is fingerprint, named apart from Approve's parameter.
func fingerprintOf(live map[string]ToolDef) string { return fingerprint(live) }

// ServerStatus describes one server.
type ServerStatus struct {
	// Name is the server's name.
	Name string
	// Running is true while its process (or in-process session) is up.
	Running bool
	// Tools counts its approved tools.
	Tools int
	// Quarantined is true until an operator approves its changed tools;
	// Reason says why.
	Quarantined bool
	Reason      string
	// Failures counts its consecutive failures; GaveUp is true once they
	// exceeded max_retries.
	Failures int
	GaveUp   bool
}

// Status returns every enabled server's state, in configuration order.
func (h *Host) Status() []ServerStatus {
	var out []ServerStatus
	for _, s := range h.order {
		s.mu.Lock()
		out = append(out, ServerStatus{
			Name: s.name, Running: s.client != nil, Tools: len(s.approved),
			Quarantined: s.quarantine != nil, Reason: s.quarReason,
			Failures: s.failures, GaveUp: s.gaveUp,
		})
		s.mu.Unlock()
	}
	return out
}

// Close stops every server (stdio: stdin closed, then SIGTERM, then
// SIGKILL) and waits for them. Calls after Close fail.
func (h *Host) Close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	h.mu.Unlock()
	h.stop()
	var wg sync.WaitGroup
	for _, s := range h.order {
		wg.Go(func() { h.disconnect(s) })
	}
	wg.Wait()
	h.wg.Wait()
	return nil
}

func unknownServer(op, name string) error {
	return talos.Errorf(talos.CodePolicyDenied, op, "no enabled MCP server is named %s: use a name from mcp_servers", clip(name))
}

// stderrLog writes a server's stderr to the debug log, one record per line
// (at most 1 KiB of each line).
type stderrLog struct {
	log    *slog.Logger
	server string
	mu     sync.Mutex
	buf    []byte
}

func (w *stderrLog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 1024 {
				w.emit(w.buf)
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(w.buf[:i])
		w.buf = w.buf[i+1:]
	}
}

func (w *stderrLog) emit(line []byte) {
	if len(line) > 1024 {
		line = line[:1024]
	}
	w.log.Debug("mcphost: server stderr", "server", w.server, "line", string(bytes.TrimRight(line, "\r")))
}

var _ io.Writer = (*stderrLog)(nil)

// ReloadApprovals re-reads the pins of every quarantined server and lifts
// the quarantine of each whose current definitions are now exactly what is
// pinned: an approval made by another process sharing the pin store (the
// operator's `talos mcp approve` while the daemon runs) takes effect
// without a restart. It returns the names of the servers released.
func (h *Host) ReloadApprovals(ctx context.Context) ([]string, error) {
	var released []string
	var errs []error
	for _, s := range h.order {
		ok, err := h.reloadApproval(ctx, s)
		if err != nil {
			errs = append(errs, err)
		}
		if ok {
			released = append(released, s.name)
		}
	}
	if len(released) > 0 {
		h.rebuildOwners()
		h.log.Info("mcphost: approvals made elsewhere took effect", "servers", strings.Join(released, ","))
	}
	return released, errors.Join(errs...)
}

// reloadApproval is ReloadApprovals for one server: it reports whether the
// pins now approve what the quarantined server offers, and releases it.
func (h *Host) reloadApproval(ctx context.Context, s *srv) (bool, error) {
	s.pinMu.Lock()
	defer s.pinMu.Unlock()
	s.mu.Lock()
	live, quarantined := s.live, s.quarantine != nil
	s.mu.Unlock()
	if !quarantined || live == nil {
		return false, nil
	}
	pins, found, err := h.pins.LoadPins(ctx, s.identity)
	if err != nil {
		return false, talos.E(talos.CodeMCPServer, "mcphost.ReloadApprovals", "loading the pins of server "+s.name+" failed; it stays quarantined", err)
	}
	if !found || !diff(pins, live).Empty() {
		return false, nil
	}
	s.mu.Lock() // s.live is still live: only apply sets it, under pinMu
	s.release(live)
	s.mu.Unlock()
	return true, nil
}
