package host

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

// WorkspaceDir is the folder the genesis skills work in, relative to Home;
// file_manager sees its "default" subfolder (GenesisWorkspace) as
// /workspace.
const WorkspaceDir = "workspace"

// GenesisWorkspace is file_manager's folder, relative to Home.
const GenesisWorkspace = "workspace/default"

// WebAllowlistFile lists the web hosts web_scraper may fetch from, one per
// line (example.org, *.example.org or an IP address, each on ports 80 and
// 443 unless the line names one, as example.org:8080; # comments),
// relative to Home.
// Without it, or empty, web_scraper is not offered. Loopback, private and
// link-local addresses stay refused even for a listed host, unless a line
// "allow-address PREFIX" opens that range explicitly (a page on a local or
// test network); no range is open by default.
const WebAllowlistFile = "config/web-allowlist.txt"

// webPages is where fetched pages are handed to web_scraper, relative to
// Home (beneath WorkspaceDir, beside file_manager's folder, not in it).
const webPages = "workspace/.web"

// browserPages is where page text is handed to browser_automation,
// relative to Home (beside webPages).
const browserPages = "workspace/.browser"

// dockerAnswers is where the engine's answers are handed to
// docker_control, relative to Home (beside webPages).
const dockerAnswers = "workspace/.docker"

// AdmitGenesis admits the skills built into the binary into the skill
// records of sk (genesis.Admit with TRUST_LEVEL and
// SKILL_AUTOLOAD_ENABLED). It never fails: refusals are in the report and
// in audit.
func AdmitGenesis(ctx context.Context, cfg *config.Config, sk *Skills, audit, log *slog.Logger) genesis.Report {
	return genesis.Admit(ctx, genesis.Builtin(), genesis.Config{TrustLevel: cfg.TrustLevel, Autoload: cfg.SkillAutoloadEnabled,
		Origin: "talos"}, sk.Quarantine, audit, log)
}

// GenesisTools offers the active genesis skills to the chat loop: their
// tool definitions, each call in a fresh sandbox container, the output to
// the firewall as skill output. Close stops the sandbox's proxy.
type GenesisTools struct {
	Runner  *genesis.Runner
	Report  genesis.Report
	sandbox *sandbox.Sandbox
	docker  *genesis.DockerEngine
	browser *genesis.Browser
}

var _ orchestrator.Tools = (*GenesisTools)(nil)

// OpenGenesisTools admits the genesis skills (at every call; it is
// idempotent) and returns the tools of the active ones, run by a sandbox on
// TALOS_DOCKER_HOST with image (empty: sandbox.DefaultImage) and the
// workspace under Home. It returns nil tools and an error saying why when
// none can be offered (no skill active, no Docker engine); the report is
// returned either way.
func OpenGenesisTools(ctx context.Context, cfg *config.Config, image string, audit, log *slog.Logger) (*GenesisTools, genesis.Report, error) {
	const op = "host.OpenGenesisTools"
	sk, err := OpenSkills(ctx, cfg, nil, log)
	if err != nil {
		return nil, genesis.Report{}, err
	}
	rep := AdmitGenesis(ctx, cfg, sk, audit, log)
	sk.Close()
	if len(rep.Active()) == 0 {
		why := "no genesis skill is active"
		if rep.Err != nil {
			why += ": " + rep.Err.Error()
		}
		return nil, rep, talos.Errorf(talos.CodePolicyDenied, op, "%s (TRUST_LEVEL %d, SKILL_AUTOLOAD_ENABLED %t)", why, cfg.TrustLevel, cfg.SkillAutoloadEnabled)
	}
	if cfg.DockerHost == "" {
		return nil, rep, talos.Errorf(talos.CodeDocker, op, "the genesis skills need a Docker engine for their sandbox: set TALOS_DOCKER_HOST")
	}
	wsRoot := filepath.Join(cfg.Home, WorkspaceDir)
	ws := filepath.Join(cfg.Home, filepath.FromSlash(GenesisWorkspace))
	if err := os.MkdirAll(ws, 0o755); err != nil {
		return nil, rep, talos.E(talos.CodeDirPermissions, op, "cannot create the workspace "+ws, err)
	}
	if os.Getuid() == 0 {
		// Skills never run as root: the sandbox's user must own the folder
		// to write in it.
		if u, g, ok := sandboxIDs(sandbox.DefaultUser); ok {
			_ = os.Chown(ws, u, g)
		}
	}
	sb, err := sandbox.New(sandbox.Config{DockerHost: cfg.DockerHost, Image: image, MemoryLimit: cfg.SandboxMemoryLimit,
		CPUQuota: cfg.SandboxCPUQuota, PidsLimit: int64(cfg.SandboxPidsLimit), Timeout: cfg.SandboxTimeout,
		StagingDir: filepath.Join(cfg.Home, layout.Data, "sandbox"), WorkspaceDir: wsRoot, Labels: sandboxLabels(cfg), Audit: audit, Logger: log})
	if err != nil {
		return nil, rep, err
	}
	r := genesis.NewRunner(sb, ws, rep)
	var web *genesis.Fetcher
	if data, err := os.ReadFile(filepath.Join(cfg.Home, filepath.FromSlash(WebAllowlistFile))); err == nil {
		al, err := genesis.ParseWebAllowlist(data)
		if err == nil && len(al.Hosts) > 0 {
			if web, err = genesis.NewFetcher(genesis.FetchConfig{AllowedHosts: al.Hosts, AllowAddrs: al.Addrs}); err == nil {
				r.WithWeb(web, filepath.Join(cfg.Home, filepath.FromSlash(webPages)))
			}
		}
		if err != nil && log != nil {
			log.WarnContext(ctx, "web_scraper is not offered: "+WebAllowlistFile+" is invalid", "err", err)
		}
	}
	gt := &GenesisTools{Runner: r, Report: rep, sandbox: sb}
	for _, s := range rep.Active() {
		if s.ID == genesis.BrowserAutomation && web != nil && cfg.BrowserImage != "" && cfg.BrowserNetwork != "" {
			b, err := genesis.NewBrowser(genesis.BrowserConfig{DockerHost: cfg.DockerHost, Image: cfg.BrowserImage,
				Network: cfg.BrowserNetwork, Web: web, Labels: sandboxLabels(cfg), Audit: audit, Logger: log})
			if err != nil {
				if log != nil {
					log.WarnContext(ctx, "browser_automation is not offered", "err", err)
				}
				continue
			}
			gt.browser = b
			r.WithBrowser(b, filepath.Join(cfg.Home, filepath.FromSlash(browserPages)),
				filepath.Join(ws, "screenshots"), orchestrator.SessionID)
		}
		if s.ID != genesis.DockerControl {
			continue
		}
		d, err := genesis.NewDockerEngine(genesis.DockerConfig{DockerHost: cfg.DockerHost, Audit: audit, Logger: log})
		if err != nil {
			if log != nil {
				log.WarnContext(ctx, "docker_control is not offered", "err", err)
			}
			break
		}
		gt.docker = d
		r.WithDocker(d, filepath.Join(cfg.Home, filepath.FromSlash(dockerAnswers)))
	}
	return gt, rep, nil
}

func sandboxIDs(user string) (int, int, bool) {
	var u, g int
	if _, err := fmt.Sscanf(user, "%d:%d", &u, &g); err != nil {
		return 0, 0, false
	}
	return u, g, true
}

// Close removes the browser sessions and stops the sandbox's proxy,
// docker_control's and the browser's.
func (t *GenesisTools) Close() error {
	if t.browser != nil {
		_ = t.browser.Close()
	}
	if t.docker != nil {
		_ = t.docker.Close()
	}
	return t.sandbox.Close()
}

// Catalog implements orchestrator.Tools: the tools of the active skills
// and a SKILLS line naming exactly those.
func (t *GenesisTools) Catalog(ctx context.Context) ([]llm.Tool, string, error) {
	tools := t.Runner.Tools()
	if len(tools) == 0 {
		return nil, "", nil
	}
	names := make([]string, len(tools))
	for i, tl := range tools {
		names[i] = tl.Name
	}
	return tools, "SKILLS active now (call them as tools; no others exist): " + strings.Join(names, ", ") + ".", nil
}

// Call implements orchestrator.Tools.
func (t *GenesisTools) Call(ctx context.Context, call llm.ToolCall) (orchestrator.ToolResult, error) {
	text, err := t.Runner.Call(ctx, call.Name, call.Arguments)
	if err != nil {
		return orchestrator.ToolResult{}, err
	}
	src := firewall.SourceSkill
	if genesis.IsWeb(call.Name) {
		src = firewall.SourceWeb // page text: scanned as web content
	}
	return orchestrator.ToolResult{Text: text, Source: src}, nil
}

// MultiTools offers the tools of several sources as one catalog; a call
// goes to the first source whose catalog names the tool.
type MultiTools []orchestrator.Tools

var _ orchestrator.Tools = MultiTools(nil)

// Catalog implements orchestrator.Tools. A source whose catalog fails is
// left out (and its error returned only when every source failed); a tool
// whose name an earlier source already offers is left out too, since calls
// go to that source.
func (m MultiTools) Catalog(ctx context.Context) ([]llm.Tool, string, error) {
	var tools []llm.Tool
	var texts []string
	var errs []error
	seen := map[string]bool{}
	for _, s := range m {
		ts, text, err := s.Catalog(ctx)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, tl := range ts {
			if !seen[tl.Name] {
				seen[tl.Name] = true
				tools = append(tools, tl)
			}
		}
		if text != "" {
			texts = append(texts, text)
		}
	}
	if len(errs) == len(m) && len(m) > 0 {
		return nil, "", errs[0]
	}
	return tools, strings.Join(texts, "\n"), nil
}

// Call implements orchestrator.Tools.
func (m MultiTools) Call(ctx context.Context, call llm.ToolCall) (orchestrator.ToolResult, error) {
	for _, s := range m {
		ts, _, err := s.Catalog(ctx)
		if err != nil {
			continue
		}
		for _, tl := range ts {
			if tl.Name == call.Name {
				return s.Call(ctx, call)
			}
		}
	}
	return orchestrator.ToolResult{}, talos.Errorf(talos.CodePolicyDenied, "host.MultiTools.Call", "no tool is called %q", clipName(call.Name))
}

func clipName(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strings.ToValidUTF8(s, "?")
}
