package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

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

			ops := slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), nil)).With("component", "sockproxy")
			var auditOut io.Writer = cmd.ErrOrStderr()
			if auditPath != "" {
				f, err := os.OpenFile(auditPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
				if err != nil {
					return withExit(2, fmt.Errorf("opening the audit log %s: %w", auditPath, err))
				}
				defer f.Close()
				auditOut = f
			}
			audit := slog.New(slog.NewJSONHandler(auditOut, nil)).With("tier", 1, "component", "sockproxy")

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
			fmt.Fprintf(cmd.OutOrStdout(), "sockproxy: profile %s on %s -> %s\n", p.Name, listen, upstream)
			if err := sockproxy.Serve(ctx, ln, proxy); err != nil {
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
	f.StringVar(&profile, "profile", sockproxy.ProfileNameSkills, "policy for this listener: skills or maintenance")
	f.StringVar(&auditPath, "audit-log", "", "append audit records (JSON lines) to this file (mode 0600); default stderr")
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
