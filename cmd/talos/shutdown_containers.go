package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/tlog"
)

// The end of a shutdown: the containers get containerBudget of the forced
// deadline, less containerMargin to write the last audit line and exit.
const (
	containerBudget = 4 * time.Second
	containerMargin = time.Second
)

// drainDeadline is when the drain of a shutdown that began at began must
// end: daemon.ShutdownGrace from now, but early enough to leave
// containerBudget before ShutdownForce.
func drainDeadline(began time.Time) time.Time {
	d := time.Now().Add(daemon.ShutdownGrace)
	if last := began.Add(ShutdownForce - containerBudget); last.Before(d) {
		d = last
	}
	return d
}

// stopContainers is the shutdown's container step: it stops and removes
// this home's Talos-labelled containers (host.StopContainers) before
// deadline, and says what it did in the audit log.
func stopContainers(cfg *config.Config, audit, log *slog.Logger, deadline time.Time) {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	began := time.Now()
	sweep, err := host.StopContainers(ctx, cfg)
	attrs := []slog.Attr{slog.Int("pid", os.Getpid()), slog.Int("removed", len(sweep.Removed)),
		slog.String("containers", redact.Text(strings.Join(sweep.Removed, ","))), slog.Duration("took", time.Since(began))}
	if err != nil {
		attrs = append(attrs, slog.String("error", redact.Text(err.Error())))
		for name, why := range sweep.Failed {
			log.Error("container not stopped at shutdown", "container", name, "err", why)
		}
		log.Error("stopping this home's containers at shutdown", "err", err)
	}
	if err != nil || len(sweep.Removed) > 0 {
		tlog.Audit(context.Background(), audit, "containers_stopped", attrs...)
	}
}
