package host

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/internal/layout"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	quarsql "github.com/talos-ironclad/talos/quarantine/sqlstore"
	ragsql "github.com/talos-ironclad/talos/rag/sqlstore"
	"github.com/talos-ironclad/talos/sqldb"
	"github.com/talos-ironclad/talos/strikes"
	strikesql "github.com/talos-ironclad/talos/strikes/sqlstore"
)

// EmbeddedSQLiteFile is the embedded relational store, relative to Home,
// used when TALOS_POSTGRES_URL is not set.
const EmbeddedSQLiteFile = "data/talos.db"

// SQLDSN returns the relational store of cfg for sqldb.Open: the
// PostgreSQL URL (with the password filled in from POSTGRES_PASSWORD) or
// the embedded SQLite file.
func SQLDSN(cfg *config.Config) string {
	if cfg.PostgresURL != "" {
		return cfg.PostgresDSN()
	}
	return filepath.Join(cfg.Home, filepath.FromSlash(EmbeddedSQLiteFile))
}

// Schema is one component's migrations.
type Schema struct {
	Component  string
	Migrations []sqldb.Migration
}

// Schemas are the relational schemas of every component, in the order the
// boot applies them.
func Schemas() []Schema {
	return []Schema{
		{Component: strikesql.Component, Migrations: strikesql.Migrations},
		{Component: quarsql.Component, Migrations: quarsql.Migrations()},
		{Component: ragsql.Component, Migrations: ragsql.Migrations},
	}
}

// ApprovalFile is where approval codes are delivered, relative to Home:
// readable by the owner only.
const ApprovalFile = "keys/approval-code.txt"

// Skills is the skill lifecycle of a home: quarantine records and strikes
// on the relational store, keys from TALOS_HOME/keys.
type Skills struct {
	DB         *sqldb.DB
	Quarantine *quarantine.Manager
	Strikes    *strikes.Tracker
	quarStore  *quarsql.Store
	cfg        *config.Config
	// diskUsage reads the home's disk for Run's emergency check; nil
	// means StatfsUsage (tests give a full disk).
	diskUsage DiskUsage
}

// Close closes the database.
func (s *Skills) Close() error { return s.DB.Close() }

// RunTimeout is the longest a Run may take: the sandbox's timeout
// (SANDBOX_TIMEOUT) and a minute for creating, starting and removing the
// container. A server answering a run must keep the connection that long.
func (s *Skills) RunTimeout() time.Duration { return s.cfg.SandboxTimeout + time.Minute }

// OpenSkills opens the relational store of cfg, applies the skill schemas
// and builds the quarantine manager and the strike tracker. Approval codes
// go to ApprovalFile, to console when it is not nil (the daemon passes its
// terminal), and are spoken into TALOS_HOME/tmp/approvals when espeak-ng is
// installed.
func OpenSkills(ctx context.Context, cfg *config.Config, console io.Writer, log *slog.Logger) (*Skills, error) {
	db, err := sqldb.Open(ctx, SQLDSN(cfg))
	if err != nil {
		return nil, err
	}
	s, err := newSkills(ctx, cfg, db, console, log)
	if err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

func newSkills(ctx context.Context, cfg *config.Config, db *sqldb.DB, console io.Writer, log *slog.Logger) (*Skills, error) {
	codeKey, err := Key(cfg.Home, "approval")
	if err != nil {
		return nil, err
	}
	auditKey, err := Key(cfg.Home, "audit")
	if err != nil {
		return nil, err
	}
	qs, err := quarsql.New(ctx, db, auditKey)
	if err != nil {
		return nil, err
	}
	notifiers := quarantine.MultiNotifier{&quarantine.FileNotifier{Path: filepath.Join(cfg.Home, filepath.FromSlash(ApprovalFile))}}
	if console != nil {
		notifiers = append(notifiers, &quarantine.ConsoleNotifier{W: console})
	}
	if _, err := exec.LookPath(quarantine.SpeechProgram); err == nil {
		if sp, err := quarantine.NewSpeechNotifier(filepath.Join(cfg.Home, layout.Tmp, "approvals")); err == nil {
			notifiers = append(notifiers, sp)
		}
	}
	qm, err := quarantine.New(quarantine.Config{Dir: filepath.Join(cfg.Home, layout.Skills), CodeKey: codeKey, ReservedIDs: genesis.ReservedIDs(), Logger: log}, qs, notifiers)
	if err != nil {
		return nil, err
	}
	ss, err := strikesql.New(ctx, db, auditKey)
	if err != nil {
		return nil, err
	}
	tr, err := strikes.New(strikes.Config{Threshold: cfg.StrikeThreshold, Key: auditKey, Logger: log}, ss, deprecator{qm})
	if err != nil {
		return nil, err
	}
	return &Skills{DB: db, Quarantine: qm, Strikes: tr, quarStore: qs, cfg: cfg}, nil
}

// deprecator takes a skill that reached the strike threshold out of
// quarantine's active set.
type deprecator struct{ m *quarantine.Manager }

func (d deprecator) Deprecate(ctx context.Context, dep strikes.Deprecation) error {
	_, err := d.m.Deprecate(ctx, quarantine.Key{ID: dep.Skill.ID, Version: dep.Skill.Version, Hash: dep.Skill.Hash},
		dep.By, "strike threshold reached: strikes "+joinInts(dep.Numbers)+", last: "+dep.FinalType)
	return err
}

func joinInts(ns []int) string {
	parts := make([]string, len(ns))
	for i, n := range ns {
		parts[i] = strconv.Itoa(n)
	}
	return strings.Join(parts, ", ")
}

// Sandbox returns the skill sandbox of cfg: TALOS_DOCKER_HOST behind the
// sandbox's own socket proxy, the SANDBOX_* limits, and image (empty:
// sandbox.DefaultImage). Without a Docker engine it is an error that says
// how to configure one.
func Sandbox(cfg *config.Config, image string, audit, log *slog.Logger) (*sandbox.Sandbox, error) {
	if cfg.DockerHost == "" {
		return nil, talos.Errorf(talos.CodeDocker, "host.Sandbox", "no Docker engine is configured: set TALOS_DOCKER_HOST (for example unix:///var/run/docker.sock) so skills can run in a sandbox")
	}
	hosts, err := OperatorHosts(cfg)
	if err != nil {
		return nil, err
	}
	return sandbox.New(sandbox.Config{DockerHost: cfg.DockerHost, Image: image, MemoryLimit: cfg.SandboxMemoryLimit,
		CPUQuota: cfg.SandboxCPUQuota, PidsLimit: int64(cfg.SandboxPidsLimit), Timeout: cfg.SandboxTimeout,
		StagingDir: filepath.Join(cfg.Home, layout.Data, "sandbox"), EgressAllow: hosts, Labels: sandboxLabels(cfg), Audit: audit, Logger: log})
}

// OperatorHosts reads the hosts the operator approved for network access,
// WebAllowlistFile under Home (one host, *.name or IP address per line,
// optionally with :port; # comments):
// what web_scraper may fetch and what a skill that declares those hosts
// may reach through its egress proxy. A missing file means none; an
// invalid one is an error naming every bad line.
func OperatorHosts(cfg *config.Config) ([]string, error) {
	path := filepath.Join(cfg.Home, filepath.FromSlash(WebAllowlistFile))
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, "host.OperatorHosts", "cannot read "+path, err)
	}
	hosts, err := genesis.ParseAllowlist(data)
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, "host.OperatorHosts", "fix "+path, err)
	}
	return hosts, nil
}

// Resolve finds the record named by ref: ID, ID@VERSION or
// ID@VERSION#HASH-PREFIX. Without a version it is the newest version;
// several contents of one version need the hash prefix. The error says
// which records matched (T010) or that none did (T010).
func (s *Skills) Resolve(ctx context.Context, ref string) (quarantine.Record, error) {
	const op = "host.Skills.Resolve"
	id, rest, _ := strings.Cut(ref, "@")
	version, hash, _ := strings.Cut(rest, "#")
	recs, err := s.Quarantine.List(ctx, quarantine.Filter{ID: id})
	if err != nil {
		return quarantine.Record{}, err
	}
	var match []quarantine.Record
	for _, r := range recs {
		if (version == "" || r.Version == version) && strings.HasPrefix(r.Hash, hash) {
			match = append(match, r)
		}
	}
	if len(match) == 0 {
		return quarantine.Record{}, talos.Errorf(talos.CodeConfigInvalid, op, "no skill record %s: `talos skill list` shows them", redact.Value(ref))
	}
	sort.Slice(match, func(i, j int) bool { return match[i].CreatedAt.After(match[j].CreatedAt) })
	if version == "" {
		v := match[0].Version
		var same []quarantine.Record
		for _, r := range match {
			if r.Version == v {
				same = append(same, r)
			}
		}
		match = same
	}
	if len(match) > 1 {
		names := make([]string, len(match))
		for i, r := range match {
			names[i] = SkillName(r.Key)
		}
		return quarantine.Record{}, talos.Errorf(talos.CodeConfigInvalid, op, "%s names %d records with different content: say which, one of %s", redact.Value(ref), len(match), strings.Join(names, ", "))
	}
	return match[0], nil
}

// SkillName is the reference of a record: ID@VERSION#first 12 hex digits.
func SkillName(k quarantine.Key) string {
	return k.ID + "@" + k.Version + "#" + k.Hash[:min(12, len(k.Hash))]
}
