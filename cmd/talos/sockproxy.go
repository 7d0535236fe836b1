package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/sockproxy"
)

// Default addresses of `talos sockproxy`.
const (
	defaultSockproxyListen = "unix:///run/talos/docker.sock"
)

// newSockproxyCmd builds `talos sockproxy`: the Docker API filtering proxy.
// The logic lives in package sockproxy; this only reads flags.
func newSockproxyCmd() *cobra.Command {
	var (
		upstream, listen, profile, auditPath string
		binds, networks, caps                []string
		namedVolumes, nonLoopback            bool
		group, burst                         int
		rate                                 float64
		maxBody                              int64
	)
	cmd := &cobra.Command{
		Use:   "sockproxy",
		Short: "Serve a filtering proxy in front of the Docker socket",
		Long: `Serve a filtering proxy in front of the Docker socket.

Clients (the skill sandbox, the zombie hunt) talk to the proxy's socket as if it
were Docker's. Only the profile's endpoints pass, create bodies are inspected
(no privileged mode, host namespaces, devices, host binds, …; a read-only root
is required), containers get the label talos.managed=true and per-container
calls work only on such containers. Everything else is answered 403 and written
to the audit log (JSON lines, tier 1).

Audit log: by default the home's tier-1 log, in a hash-chained log of its own
per profile, <home>/logs/tier1/sockproxy/<profile> (the daemon holds the
one-writer lock of <home>/logs/tier1 itself; check the chain with
` + "`talos logs verify --dir <home>/logs/tier1/sockproxy/<profile>`" + `).
--audit-log FILE appends plain JSON lines to FILE instead, --audit-log - writes
them to stderr.

Profiles: skills (ping, version, list, inspect, create, start, stop, wait, logs)
and maintenance (skills plus kill and remove).`,
		Example: `  talos sockproxy --upstream unix:///var/run/docker.sock --listen unix:///run/talos/docker.sock --profile skills
  talos sockproxy --listen tcp://127.0.0.1:2375 --profile maintenance --audit-log /var/log/talos/audit/sockproxy.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := sockproxy.ProfileByName(profile)
			if err != nil {
				return withExit(2, err)
			}
			p.BindAllowlist = binds
			p.NetworkModes = networks
			p.CapAdd = caps
			p.AllowNamedVolumes = namedVolumes

			ops := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), redactOpts)).With("component", "sockproxy")
			auditH, auditDesc, closeAudit, err := openSockproxyAudit(cmd, auditPath, p.Name)
			if err != nil {
				return withExit(2, err)
			}
			defer closeAudit()
			audit := slog.New(auditH).With("tier", 1, "component", "sockproxy")

			proxy, err := sockproxy.New(sockproxy.Config{
				Upstream: upstream, Profile: p, MaxBodyBytes: maxBody,
				RateLimit: rate, RateBurst: burst, Audit: audit, Logger: ops,
			})
			if err != nil {
				return withExit(2, err)
			}
			defer proxy.Close()
			ln, err := sockproxy.Listen(listen, sockproxy.ListenOptions{AllowNonLoopback: nonLoopback, Group: group})
			if err != nil {
				return withExit(2, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(cmd.OutOrStdout(), "sockproxy: profile %s on %s -> %s, audit to %s\n", p.Name, listen, upstream, auditDesc)
			if err := sockproxy.Serve(ctx, ln, sockproxy.NewServer(proxy)); err != nil {
				return err
			}
			s := proxy.Stats()
			fmt.Fprintf(cmd.OutOrStdout(), "sockproxy: stopped (allowed %d, denied %d, rate-limited %d, upstream errors %d)\n",
				s.Allowed, s.Denied, s.RateLimited, s.UpstreamError)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&upstream, "upstream", sockproxy.DefaultUpstream, "Docker engine: unix:///path/docker.sock or tcp://host:port")
	f.StringVar(&listen, "listen", defaultSockproxyListen, "where to listen: unix:///path (mode 0660) or tcp://127.0.0.1:PORT")
	f.StringVar(&profile, "profile", sockproxy.ProfileNameSkills, "policy for this listener: skills, maintenance or docker_control")
	f.StringVar(&auditPath, "audit-log", "", "append audit records (JSON lines) to this file (mode 0600), or - for stderr; default the home's hash-chained tier-1 log <home>/logs/tier1/sockproxy/<profile>")
	f.StringArrayVar(&binds, "allow-bind", nil, "host directory containers may bind-mount (repeatable; default none)")
	f.StringArrayVar(&networks, "network-mode", nil, "allowed network mode (repeatable; default none, bridge, default)")
	f.StringArrayVar(&caps, "allow-cap-add", nil, "capability containers may add (repeatable; default none)")
	f.BoolVar(&namedVolumes, "allow-named-volumes", false, "allow named volumes")
	f.BoolVar(&nonLoopback, "allow-non-loopback", false, "allow a tcp:// listener on a non-loopback address (dangerous)")
	f.IntVar(&group, "group", 0, "group ID to give the unix socket")
	f.Float64Var(&rate, "rate", 0, fmt.Sprintf("requests per second per client (0: %d, negative: unlimited)", sockproxy.DefaultRateLimit))
	f.IntVar(&burst, "burst", 0, fmt.Sprintf("token-bucket depth per client (0: %d)", sockproxy.DefaultRateBurst))
	f.Int64Var(&maxBody, "max-body", 0, fmt.Sprintf("largest create/update body in bytes (0: %d)", sockproxy.DefaultMaxBodyBytes))
	return cmd
}

// sockproxyAuditDir is where `talos sockproxy` keeps its tier-1 chain for
// profile: a directory of its own under the home's tier 1. The daemon
// holds the one-writer lock of tier1 itself (tlog allows one writer per
// chain), and two proxies (skills and maintenance) may run at once, so each
// profile gets its own hash chain, verified like the daemon's with
// `talos logs verify --dir`. Tier 1 is never pruned, subdirectories
// included.
func sockproxyAuditDir(home, profile string) string {
	return filepath.Join(home, layout.LogsTier1, "sockproxy", profile)
}

// redactOpts keeps credentials in URLs out of the proxy's logs.
var redactOpts = &slog.HandlerOptions{ReplaceAttr: redact.ReplaceAttr}

// openSockproxyAudit returns the audit handler for `talos sockproxy`, a
// description of where it writes, and its closer. path "" means the home's
// tier-1 chain (sockproxyAuditDir), "-" stderr, anything else a JSON-lines
// file opened 0600 for appending.
func openSockproxyAudit(cmd *cobra.Command, path, profile string) (slog.Handler, string, func(), error) {
	switch path {
	case "-":
		return slog.NewJSONHandler(cmd.ErrOrStderr(), redactOpts), "stderr", func() {}, nil
	case "":
	default:
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return nil, "", nil, fmt.Errorf("opening the audit log %s: %w", path, err)
		}
		return slog.NewJSONHandler(f, redactOpts), path, func() { _ = f.Close() }, nil
	}
	home, err := resolveHome(cmd)
	if err != nil {
		return nil, "", nil, fmt.Errorf("%w (or pass --audit-log FILE)", err)
	}
	tier1 := filepath.Join(home, layout.LogsTier1)
	if st, err := os.Stat(tier1); err != nil || !st.IsDir() {
		return nil, "", nil, fmt.Errorf("no tier-1 log directory at %s for the audit log: run `talos init` for this TALOS_HOME, or pass --audit-log FILE (--audit-log - for stderr)", tier1)
	}
	dir := sockproxyAuditDir(home, profile)
	h, err := tlog.Open(dir, tlog.Tier1, tlog.Options{})
	if err != nil {
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, "", nil, fmt.Errorf("another `talos sockproxy --profile %s` already writes the audit chain in %s (one writer per hash chain): stop it, or give this one its own file with --audit-log FILE", profile, dir)
		}
		return nil, "", nil, fmt.Errorf("opening the tier-1 audit log in %s: %w (or pass --audit-log FILE)", dir, err)
	}
	return h, "tier-1 chain " + dir, func() { _ = h.Close() }, nil
}
