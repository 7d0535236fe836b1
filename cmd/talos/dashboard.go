package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/dashboard"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/strikes"
)

// daemonDashboard is the dashboard `talos run` serves on
// WEB_BIND_ADDRESS:WEB_PORT: built before the boot (a non-loopback address
// or missing credentials stop the daemon with the configuration errors),
// served once the daemon is up, over the daemon's health checker, the
// agent, the maintenance scheduler and the skills opened at boot.
type daemonDashboard struct {
	addr   string
	dash   *dashboard.Dashboard
	skills *host.Skills // set before serve; nil when the skills store could not be opened

	logs, audit *dashboard.LogFeed
	ceiling     int                     // CHROMA_MAX_VECTORS, the memory's ceiling
	panic       func(by, reason string) // the panic shutdown; set before serve
}

// dashboardFeeds are the feeds of the dashboard's live logs (the daemon's
// log lines) and of its security view (the audit lines).
type dashboardFeeds struct{ logs, audit *dashboard.LogFeed }

func newDashboardFeeds() dashboardFeeds {
	return dashboardFeeds{logs: dashboard.NewLogFeed(0), audit: dashboard.NewLogFeed(0)}
}

// tapLog returns log also writing to the live logs' feed.
func (f dashboardFeeds) tapLog(log *slog.Logger) *slog.Logger {
	return slog.New(tlog.Fanout(log.Handler(), f.logs))
}

// tapAudit returns audit also writing to the security view's feed; the
// audit tier and its hash chain are unchanged.
func (f dashboardFeeds) tapAudit(audit *slog.Logger) *slog.Logger {
	return slog.New(tlog.Fanout(audit.Handler(), f.audit))
}

// newDaemonDashboard builds the dashboard; d is read only once requests
// arrive (after the boot), so it may still be nil here.
func newDaemonDashboard(cfg *config.Config, log *slog.Logger, d **daemon.Daemon, agent *daemonAgent, maint *host.Maintenance, feeds dashboardFeeds) (*daemonDashboard, error) {
	if err := dashboard.CheckLoopback(cfg.DashboardAddr()); err != nil {
		return nil, err
	}
	dd := &daemonDashboard{addr: cfg.DashboardAddr(), logs: feeds.logs, audit: feeds.audit, ceiling: cfg.ChromaMaxVectors}
	deps := dashboard.Deps{
		Health: func(ctx context.Context) (health.Report, error) {
			if *d == nil {
				return health.Report{}, errors.New("the daemon is still booting")
			}
			return (*d).Checker().Report(ctx)
		},
		Adapters: func(context.Context) ([]dashboard.Adapter, error) {
			a := agent.get()
			if a == nil {
				return nil, errors.New("the agent is not built yet: the daemon is still booting, or its agent step failed (see /health)")
			}
			out := make([]dashboard.Adapter, len(a.Adapters))
			for i, ad := range a.Adapters {
				out[i] = dashboard.Adapter{Role: ad.Role, Name: ad.Name, Detail: ad.Detail}
			}
			return out, nil
		},
		Maintenance: func(context.Context) (string, error) { return maint.Describe(time.Now()) },
		Skills: func(ctx context.Context) ([]quarantine.Record, error) {
			if dd.skills == nil {
				return nil, errors.New("the skills store could not be opened at boot (the daemon log says why)")
			}
			return dd.skills.Quarantine.List(ctx, quarantine.Filter{})
		},
		Strikes: func(ctx context.Context, k quarantine.Key) (int, error) {
			if dd.skills == nil {
				return 0, errors.New("the skills store could not be opened at boot")
			}
			act, err := dd.skills.Strikes.Active(ctx, strikes.Skill{ID: k.ID, Version: k.Version, Hash: k.Hash})
			return len(act), err
		},
		Chat: agent.Handlers()[chatapi.Path],
	}
	dd.viewDeps(&deps, d, agent, maint)
	dash, err := dashboard.New(dashboard.Config{User: cfg.BasicAuthUser, Pass: cfg.BasicAuthPass.Value(), Logger: log}, deps)
	if err != nil {
		return nil, err
	}
	dd.dash = dash
	return dd, nil
}

// serve listens and serves until ctx ends; the returned channel closes
// when the dashboard has stopped. A port that cannot be opened is logged
// and printed, and the daemon runs on without its dashboard.
func (dd *daemonDashboard) serve(ctx context.Context, skills *host.Skills, out io.Writer, log *slog.Logger, user string) <-chan struct{} {
	done := make(chan struct{})
	dd.skills = skills
	ln, err := dashboard.Listen(ctx, dd.addr)
	if err != nil {
		log.Error("dashboard not serving", "addr", dd.addr, "err", err)
		fmt.Fprintf(out, "dashboard: not serving: %v\n", err)
		close(done)
		return done
	}
	fmt.Fprintf(out, "dashboard: http://%s/ (log in as %s with BASIC_AUTH_PASS)\n", ln.Addr(), user)
	go func() {
		defer close(done)
		if err := dd.dash.Serve(ctx, ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("dashboard stopped", "err", err)
		}
	}()
	return done
}
