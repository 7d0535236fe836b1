package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/server"
	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/atomicfile"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/mcphost"
	"github.com/talos-ironclad/talos/mcphost/gateway"
	"github.com/talos-ironclad/talos/mcphost/tunnel"
)

// defaultTunnelAddr is where `talos mcp serve` listens unless told
// otherwise: loopback (reach it through Tailscale or an SSH forward), on
// port 8766, the one the dashboard (8080) and API (8081) leave free for
// peer-to-peer MCP.
const defaultTunnelAddr = "127.0.0.1:8766"

// defaultServeRate is the tools/call rate `talos mcp serve` allows each
// connection unless told otherwise: far above what a person in a desktop
// client causes, low enough to stop a runaway loop.
const defaultServeRate = 20

// defaultTokenTTL is the lifetime `talos mcp token issue` gives a token.
const defaultTokenTTL = 24 * time.Hour

// stderrLog is the JSON logger of the long-running MCP commands: their
// stdout may be an MCP stream, so everything else goes to stderr.
func stderrLog(cmd *cobra.Command) *slog.Logger {
	return slog.New(slog.NewJSONHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{ReplaceAttr: redact.ReplaceAttr}))
}

// splitCommandLine splits the --command of `talos mcp serve` into argv
// without a shell: words separated by blanks, '…' and "…" quote, a backslash
// escapes the next character outside single quotes. Characters a shell
// would act on (| & ; < > $ ` and parentheses) are refused unquoted, since
// no shell runs and they would not do what they seem to.
func splitCommandLine(s string) ([]string, error) {
	var argv []string
	var cur strings.Builder
	inWord, quote := false, rune(0)
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		r := rs[i]
		switch {
		case quote == '\'':
			if r == '\'' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\\' && i+1 < len(rs):
			i++
			cur.WriteRune(rs[i])
			inWord = true
		case quote == '"':
			if r == '"' {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inWord {
				argv = append(argv, cur.String())
				cur.Reset()
				inWord = false
			}
		case strings.ContainsRune("|&;<>$`()", r):
			return nil, fmt.Errorf("--command %s holds %q: no shell runs the command, so pipes, redirections and variables are not allowed (quote the character if it is part of an argument)", redact.Value(s), r)
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("--command %s has an unclosed %c quote", redact.Value(s), quote)
	}
	if inWord {
		argv = append(argv, cur.String())
	}
	if len(argv) == 0 {
		return nil, errors.New("--command is empty: give the server's command line, for example --command \"/opt/mcp/bin/mcp-server-filesystem /home/me/projects\"")
	}
	return argv, nil
}

// peerArg checks a peer ID given as a flag or argument.
func peerArg(what, s string) (gateway.PeerID, error) {
	if _, err := gateway.ParsePeerID(s); err != nil {
		return "", fmt.Errorf("%s %s is not a peer ID (\"tp1…\", as `talos identity show` prints it): %v", what, redact.Value(s), err)
	}
	return gateway.PeerID(s), nil
}

func newMCPServeCmd() *cobra.Command {
	var peer, command, addr, name, approve string
	var noToken bool
	var rate float64
	var burst int
	cmd := &cobra.Command{
		Use:   "serve --authorized-peer PEER_ID --command \"CMD ARGS…\"",
		Short: "Expose one local stdio MCP server to one peer over the pinned TLS tunnel",
		Long: `Run CMD (no shell; its executable must lie in TALOS_MCP_ALLOWED_COMMANDS) as an
MCP server and serve its tools, through Talos's pipeline (pinning, secret
redaction, firewall, audit), to the one peer whose key is PEER_ID. The tunnel is
TLS 1.3 with both ends pinned to their Ed25519 keys.

Each connection must also present a capability token for ` + tunnel.ConnectAction + `
issued by this agent (talos mcp token issue); expired, revoked and replayed
tokens are refused. Each tools/call is then checked against the token's
scopes (` + gateway.ToolActionPrefix + `SERVER/TOOL; tools it does not grant are not listed) and the
connection's rate limit; the decisions are kept for talos mcp audit export.
--no-token admits the peer by its key alone, with no per-tool scopes and no
rate limit (--calls-per-second and --burst are refused with it).

The served tools are pinned in TALOS_HOME/` + host.MCPServePinsFile + ` on first contact; when
they change, serve shows the difference and refuses to start until it is run
with --approve FINGERPRINT.

The first line on stdout is "listening on HOST:PORT".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var problems []string
			authorized, err := peerArg("--authorized-peer", peer)
			if err != nil {
				problems = append(problems, err.Error())
			}
			argv, err := splitCommandLine(command)
			if err != nil {
				problems = append(problems, err.Error())
			}
			if msg := checkServeAddr(addr); msg != "" {
				problems = append(problems, msg)
			}
			if noToken && (cmd.Flags().Changed("calls-per-second") || cmd.Flags().Changed("burst")) {
				problems = append(problems, "--calls-per-second and --burst limit token sessions; with --no-token there is none, so they would do nothing: drop them or drop --no-token")
			}
			if rate < 0 || burst < 0 {
				problems = append(problems, fmt.Sprintf("--calls-per-second %g and --burst %d must not be negative (0 means unlimited, and one second's worth)", rate, burst))
			}
			cfg, id, err := tunnelIdentity(cmd, problems)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := stderrLog(cmd)
			h, err := host.OpenMCPCommand(ctx, cfg, name, argv, log)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			defer h.Close()
			if d, reason, ok := h.Pending(name); ok {
				if approve == "" {
					printDiff(cmd.ErrOrStderr(), name, d.Added, d.Changed, d.Removed, "talos mcp serve … --approve "+d.Fingerprint)
					return withExit(exitMCPFailed, fmt.Errorf("the tools of %s are quarantined (%s): review the difference above, then start again with --approve %s", termText(name), termText(reason), d.Fingerprint))
				}
				if err := h.Approve(ctx, name, approve); err != nil {
					return withExit(exitMCPFailed, err)
				}
				log.Info("mcp serve: changed tool definitions approved", "server", name, "fingerprint", approve)
			}
			opts := tunnel.Options{Log: log, RateLimit: gateway.RateLimit{PerSecond: rate, Burst: burst}}
			if !noToken {
				v, closeLog, err := tunnelVerifier(cfg, id)
				if err != nil {
					return withExit(exitMCPFailed, err)
				}
				defer closeLog()
				opts.Verifier = v
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return withExit(exitMCPFailed, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "listening on %s\n", ln.Addr())
			log.Info("mcp serve: serving", "server", name, "peer", string(authorized), "addr", ln.Addr().String(), "tokens", !noToken)
			if err := tunnel.ServeWith(ctx, ln, id, authorized, gateway.NewServer(h, "talos", currentBuild().Version).MCPServer(), opts); err != nil {
				return withExit(exitMCPFailed, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&peer, "authorized-peer", "", "the peer ID allowed to connect (required)")
	cmd.Flags().StringVar(&command, "command", "", "the MCP server's command line, run without a shell (required)")
	cmd.Flags().StringVar(&addr, "addr", defaultTunnelAddr, "address to listen on (port 0 picks a free one)")
	cmd.Flags().StringVar(&name, "name", "remote", "the served server's name (its tools are offered as NAME.tool)")
	cmd.Flags().BoolVar(&noToken, "no-token", false, "admit the authorized peer by its key alone, without a capability token")
	cmd.Flags().Float64Var(&rate, "calls-per-second", defaultServeRate, "each connection's sustained tools/call rate (0: unlimited; not with --no-token)")
	cmd.Flags().IntVar(&burst, "burst", 0, "each connection's burst of tools/call (0: one second's worth)")
	cmd.Flags().StringVar(&approve, "approve", "", "approve the changed tool definitions with this fingerprint (shown when serve refuses a quarantined server)")
	return cmd
}

// checkServeAddr reports what is wrong with a listen address, or "".
func checkServeAddr(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
		return fmt.Sprintf("--addr %s is not HOST:PORT (for example %s)", redact.Value(addr), defaultTunnelAddr)
	}
	return ""
}

// tunnelVerifier trusts tokens issued by id, keeps revocations and used
// nonces in MCPAuthStateFile and appends every decision to
// MCPDecisionsFile.
func tunnelVerifier(cfg *config.Config, id *gateway.Identity) (*gateway.Verifier, func(), error) {
	st, err := gateway.NewFileState(host.MCPPath(cfg, host.MCPAuthStateFile))
	if err != nil {
		return nil, nil, err
	}
	path := host.MCPPath(cfg, host.MCPDecisionsFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, nil, err
	}
	f, err := gateway.OpenDecisionFile(path, 0)
	if err != nil {
		return nil, nil, err
	}
	decisions := gateway.NewDecisionLog(1000)
	decisions.Tee(f)
	v, err := gateway.NewVerifier(gateway.VerifierConfig{Roots: []gateway.PeerID{id.PeerID()}, Decisions: decisions}, st)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return v, func() { f.Close() }, nil
}

func newMCPConnectCmd() *cobra.Command {
	var addr, tokenFile string
	cmd := &cobra.Command{
		Use:   "connect PEER_ID --addr HOST:PORT",
		Short: "A stdio MCP server that tunnels to a peer's `talos mcp serve` (a desktop client's command)",
		Long: `Use as the command of an MCP client's server entry, for example Claude Desktop's
{"mcpServers":{"remote":{"command":"/usr/local/bin/talos","args":["mcp","connect","PEER_ID","--addr","host:8766","--token-file","/home/me/talos/keys/remote.token"]}}}.
stdin and stdout carry MCP; messages go to stderr. The peer must hold the key
of PEER_ID, and it must have authorized this agent's peer ID.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var problems []string
			want, err := peerArg("PEER_ID", args[0])
			if err != nil {
				problems = append(problems, err.Error())
			}
			if _, _, err := net.SplitHostPort(addr); err != nil || addr == "" {
				problems = append(problems, fmt.Sprintf("--addr %s is not HOST:PORT of the peer's `talos mcp serve`", redact.Value(addr)))
			}
			var token string
			if tokenFile != "" {
				b, err := os.ReadFile(tokenFile)
				if err != nil {
					problems = append(problems, fmt.Sprintf("--token-file: %v", err))
				}
				token = strings.TrimSpace(string(b))
			}
			_, id, err := tunnelIdentity(cmd, problems)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			conn, err := tunnel.DialWith(ctx, addr, id, want, token)
			if err != nil {
				return withExit(exitMCPFailed, err)
			}
			if err := tunnel.Bridge(ctx, conn, cmd.InOrStdin(), cmd.OutOrStdout()); err != nil {
				return withExit(exitMCPFailed, err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "HOST:PORT of the peer's `talos mcp serve` (required)")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "a file holding the capability token the peer issued to this agent")
	return cmd
}

func newMCPTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Issue and revoke the capability tokens `talos mcp serve` requires",
	}
	var to string
	var ttl time.Duration
	var scopes []string
	issue := &cobra.Command{
		Use:   "issue --to PEER_ID",
		Short: "Print a token, signed by this agent, that lets PEER_ID connect (and do what --scope names)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var problems []string
			subject, err := peerArg("--to", to)
			if err != nil {
				problems = append(problems, err.Error())
			}
			if ttl <= 0 || ttl > gateway.MaxTTL {
				problems = append(problems, fmt.Sprintf("--ttl %s is out of range: allowed 1s to %s", ttl, gateway.MaxTTL))
			}
			_, id, err := tunnelIdentity(cmd, problems)
			if err != nil {
				return err
			}
			tok, err := gateway.Issue(id, subject, scopes, ttl)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	issue.Flags().StringVar(&to, "to", "", "the peer ID the token is for (required)")
	issue.Flags().DurationVar(&ttl, "ttl", defaultTokenTTL, "how long the token is valid")
	issue.Flags().StringSliceVar(&scopes, "scope", []string{tunnel.ConnectAction, gateway.ToolActionPrefix + "*"},
		"actions granted (repeatable; \"p/*\" grants everything below p): "+tunnel.ConnectAction+" to connect, "+gateway.ToolActionPrefix+"SERVER/TOOL per tool")
	revoke := &cobra.Command{
		Use:   "revoke TOKEN|-",
		Short: "Refuse a token (and every delegation of it) from now on, in every `talos mcp serve` of this home",
		Long:  "Revoke the token given as the argument, or read from stdin with -. A running `talos mcp serve` refuses it at its next connection.",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			raw := args[0]
			if raw == "-" {
				b, err := io.ReadAll(io.LimitReader(cmd.InOrStdin(), gateway.MaxTokenBytes+1))
				if err != nil {
					return withExit(exitMCPBadArgs, err)
				}
				raw = strings.TrimSpace(string(b))
			}
			t, err := gateway.Parse(raw)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			st, err := gateway.NewFileState(host.MCPPath(cfg, host.MCPAuthStateFile))
			if err != nil {
				return withExit(exitMCPFailed, err)
			}
			if err := st.Revoke(t.ID, time.Unix(t.ExpiresAt, 0).Add(gateway.DefaultMaxSkew)); err != nil {
				return withExit(exitMCPFailed, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked token %s (subject %s)\n", t.ID, t.Subject)
			return nil
		},
	}
	cmd.AddCommand(issue, revoke)
	return cmd
}

func newMCPAuditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "The capability decisions of `talos mcp serve`"}
	var format string
	export := &cobra.Command{
		Use:   "export [--format csv|json]",
		Short: "Write every kept capability decision (who, token, action, verdict, why) as CSV or JSON",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "csv" && format != "json" {
				return withExit(exitMCPBadArgs, fmt.Errorf("--format %s is not allowed: use csv or json", redact.Value(format)))
			}
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			log, err := gateway.ReadDecisionFiles(host.MCPPath(cfg, host.MCPDecisionsFile), 0)
			if err != nil {
				return withExit(exitMCPFailed, err)
			}
			if format == "json" {
				err = log.WriteJSON(cmd.OutOrStdout())
			} else {
				err = log.WriteCSV(cmd.OutOrStdout())
			}
			return withExit(exitMCPFailed, err)
		},
	}
	export.Flags().StringVar(&format, "format", "csv", "csv or json")
	cmd.AddCommand(export)
	return cmd
}

func newMCPGatewayCmd() *cobra.Command {
	var transport, addr string
	cmd := &cobra.Command{
		Use:   "gateway --transport stdio|http",
		Short: "Serve the tools of config.yaml's mcp_servers, through Talos's pipeline, as one MCP server",
		Long: `Let any MCP client (Claude Desktop, Cursor, an mcp-go client) use Talos as its
guarded tool gateway: every call runs through the pipeline (allow/deny lists,
pins, secret redaction, firewall, audit).

--transport stdio speaks MCP on stdin/stdout. --transport http serves
streamable HTTP at http://ADDR/mcp on loopback, behind a bearer token written
to TALOS_HOME/` + gatewayTokenFile + ` (mode 0600, new at every start); the
first line on stdout is "listening on http://HOST:PORT/mcp".

A server approved meanwhile with talos mcp approve is published within
seconds (clients are told with notifications/tools/list_changed).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if transport != "stdio" && transport != "http" {
				return withExit(exitMCPBadArgs, fmt.Errorf("--transport %s is not allowed: use stdio or http", redact.Value(transport)))
			}
			if host, _, err := net.SplitHostPort(addr); err != nil || !loopbackHost(host) {
				return withExit(exitMCPBadArgs, fmt.Errorf("--addr %s must be a loopback HOST:PORT (127.0.0.1, ::1 or localhost)", redact.Value(addr)))
			}
			cfg, err := loadConfig(cmd, nil)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := stderrLog(cmd)
			h, err := host.OpenMCP(ctx, cfg, log, log)
			if err != nil {
				return withExit(exitMCPBadArgs, err)
			}
			if h == nil {
				return withExit(exitMCPBadArgs, errors.New("no mcp_servers in config.yaml: there are no tools to serve"))
			}
			defer h.Close()
			g := gateway.NewServer(h, "talos", currentBuild().Version)
			go watchApprovals(ctx, h, g, log)
			if transport == "stdio" {
				err := server.NewStdioServer(g.MCPServer()).Listen(ctx, cmd.InOrStdin(), cmd.OutOrStdout())
				if err != nil && ctx.Err() == nil && !errors.Is(err, io.EOF) {
					return withExit(exitMCPFailed, err)
				}
				return nil
			}
			return serveGatewayHTTP(ctx, cmd, cfg, g, addr)
		},
	}
	cmd.Flags().StringVar(&transport, "transport", "stdio", "stdio or http")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:0", "the HTTP transport's loopback address (port 0 picks a free one)")
	return cmd
}

// approvalPoll is how often `talos mcp gateway` looks for approvals made
// by `talos mcp approve` (a stat of the pin file while a server is
// quarantined, nothing otherwise).
const approvalPoll = 2 * time.Second

// watchApprovals publishes the tools of servers approved by another process
// (clients get notifications/tools/list_changed) until ctx ends.
func watchApprovals(ctx context.Context, h *mcphost.Host, g *gateway.Server, log *slog.Logger) {
	t := time.NewTicker(approvalPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		released, err := h.ReloadApprovals(ctx)
		if err != nil {
			log.Warn("mcp gateway: reading approvals failed; the servers stay quarantined", "err", err)
		}
		if len(released) > 0 {
			g.Sync()
			log.Info("mcp gateway: approved servers published", "servers", strings.Join(released, ","))
		}
	}
}

// gatewayTokenFile holds the bearer token of `talos mcp gateway --transport
// http`, relative to Home.
const gatewayTokenFile = "keys/mcp-gateway.token"

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func serveGatewayHTTP(ctx context.Context, cmd *cobra.Command, cfg *config.Config, g *gateway.Server, addr string) error {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return withExit(exitMCPFailed, err)
	}
	token := hex.EncodeToString(b[:])
	path := host.MCPPath(cfg, gatewayTokenFile)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return withExit(exitMCPFailed, err)
	}
	if err := atomicfile.WriteFile(path, []byte(token+"\n"), 0o600); err != nil {
		return withExit(exitMCPFailed, err)
	}
	handler, err := g.HTTPHandler(token)
	if err != nil {
		return withExit(exitMCPFailed, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return withExit(exitMCPFailed, err)
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(cmd.OutOrStdout(), "listening on http://%s/mcp\nbearer token in %s\n", ln.Addr(), path)
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return withExit(exitMCPFailed, err)
	}
	return nil
}

// tunnelIdentity reports every problem of the command line at once (exit
// code exitMCPBadArgs), else loads the configuration and this agent's
// identity (`talos identity init`).
func tunnelIdentity(cmd *cobra.Command, problems []string) (*config.Config, *gateway.Identity, error) {
	if len(problems) > 0 {
		return nil, nil, withExit(exitMCPBadArgs, errors.New(strings.Join(problems, "\n")))
	}
	cfg, err := loadConfig(cmd, nil)
	if err != nil {
		return nil, nil, withExit(exitMCPBadArgs, err)
	}
	id, err := host.LoadIdentity(cfg)
	if err != nil {
		return nil, nil, withExit(exitMCPBadArgs, err)
	}
	return cfg, id, nil
}
