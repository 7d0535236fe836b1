package sandbox

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/egress"
	"github.com/talos-ironclad/talos/quarantine"
)

// Network access of a skill that declares hosts. The container still has
// no network interface but loopback (NetworkMode none, checked from inside
// before the skill runs): the sandbox serves an egress.Proxy for the run on
// a unix socket in the run's staging folder, mounted read-only at
// EgressMount, and the supervisor relays EgressProxyAddr on the
// container's loopback to that socket. HTTP_PROXY and HTTPS_PROXY point
// there; the proxy admits only the declared hosts the operator approved
// (Config.EgressAllow) and never a loopback, private or link-local address
// (unless Config.EgressAllowAddrs holds it), resolving names itself.
const (
	EgressMount     = "/run/talos-egress"          // folder holding the egress proxy's socket, read-only
	EgressSocket    = EgressMount + "/egress.sock" // the socket, as the container sees it
	EgressProxyAddr = "127.0.0.1:3128"             // the relay on the container's loopback
	EnvEgressSocket = "TALOS_EGRESS_SOCKET"        // tells the supervisor to start the relay
	maxEgressEvents = 256                          // events kept per run
	egressProxyURL  = "http://" + EgressProxyAddr  // for HTTP_PROXY / HTTPS_PROXY
	egressDirName   = "egress"                     // beside the staged copy
	egressSockName  = "egress.sock"                // in egressDirName
	egressIdle      = 30 * time.Second             // a silent tunnel is closed after this
	egressConnLimit = 8                            // connections at once per run
	egressShutdown  = 2 * time.Second              // grace for the proxy's server at the end of a run
)

// EvidenceEgress is the evidence kind of a request through the egress
// proxy that it refused (a host the skill did not declare or the operator
// did not approve, a private address): a security violation like any
// other forbidden action.
const EvidenceEgress = "egress_denied"

// egressAllow returns the proxy allowlist of a run of man: each declared
// host on the ports the operator's list covers (a host declared without a
// port: 80 and 443, those covered). A declared host the operator's list
// does not cover refuses the run (code T406), naming every such host.
func (s *Sandbox) egressAllow(man *quarantine.Manifest) ([]string, error) {
	var allow, missing []string
	for _, d := range man.Capabilities.Network {
		host, ports := d, []int{80, 443}
		if h, p, err := net.SplitHostPort(d); err == nil {
			n, _ := strconv.Atoi(p)
			host, ports = h, []int{n}
		}
		covered := false
		for _, port := range ports {
			if s.operator.Allowed(host, port) {
				allow = append(allow, net.JoinHostPort(host, strconv.Itoa(port)))
				covered = true
			}
		}
		if !covered {
			missing = append(missing, d)
		}
	}
	if len(missing) > 0 {
		return nil, talos.Errorf(talos.CodePolicyDenied, "sandbox.Run",
			"%s@%s declares network hosts the operator has not approved: %s; approve them (the daemon reads TALOS_HOME/config/web-allowlist.txt) or remove them from capabilities.network",
			man.ID, man.Version, clip(strings.Join(missing, ", "), 300))
	}
	return allow, nil
}

// runEgress is the egress proxy of one run.
type runEgress struct {
	server   *egress.UnixServer
	mu       sync.Mutex
	events   []egress.Event
	once     sync.Once
	seen     []egress.Event
	evidence []Evidence
}

// startEgress serves an egress proxy for allow on a unix socket in
// runDir/egress (the folder 0755, the socket 0666 so the container's user
// can connect) and returns it with the bind and environment of the run.
func (s *Sandbox) startEgress(runDir string, allow []string) (*runEgress, []string, []string, error) {
	const op = "sandbox.Run"
	re := &runEgress{}
	p, err := egress.New(egress.Config{Allow: allow, AllowAddrs: s.cfg.EgressAllowAddrs, IdleTimeout: egressIdle,
		MaxBytes: s.cfg.EgressMaxBytes, MaxConns: egressConnLimit, Logger: s.log, Events: re.record}, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	dir := filepath.Join(runDir, egressDirName)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, nil, nil, talos.E(talos.CodeSkillSandbox, op, "cannot create the egress folder "+dir, err)
	}
	sock := filepath.Join(dir, egressSockName)
	if re.server, err = egress.ServeUnix(sock, p, s.log); err != nil {
		return nil, nil, nil, talos.E(talos.CodeSkillSandbox, op, "cannot serve the egress socket "+sock+" to the container's user", err)
	}
	env := []string{EnvEgressSocket + "=" + EgressSocket, "HTTP_PROXY=" + egressProxyURL, "HTTPS_PROXY=" + egressProxyURL,
		"http_proxy=" + egressProxyURL, "https_proxy=" + egressProxyURL, "NO_PROXY=", "no_proxy="}
	return re, []string{dir + ":" + EgressMount + ":ro"}, env, nil
}

func (re *runEgress) record(ev egress.Event) {
	re.mu.Lock()
	defer re.mu.Unlock()
	if len(re.events) < maxEgressEvents {
		re.events = append(re.events, ev)
	}
}

// stop closes the proxy (cutting open tunnels, and waiting for the
// requests in flight to report) and returns what it saw: every event, and the refused ones as evidence. Only
// the first call stops; later ones return the same.
func (re *runEgress) stop() ([]egress.Event, []Evidence) {
	re.once.Do(func() {
		re.server.Close(egressShutdown)
		re.mu.Lock()
		defer re.mu.Unlock()
		re.seen = append([]egress.Event(nil), re.events...)
		for _, e := range re.seen {
			if !e.Allowed {
				re.evidence = append(re.evidence, Evidence{Kind: EvidenceEgress, Detail: clip(fmt.Sprintf("%s %s:%d: %s", e.Method, e.Host, e.Port, e.Reason), 300)})
			}
		}
	})
	return re.seen, re.evidence
}
