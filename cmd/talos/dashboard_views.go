package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/dashboard"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/orchestrator"
	"github.com/talos-ironclad/talos/prune"
	"github.com/talos-ironclad/talos/rag"
)

// dashboardReports is how many dream cycle reports the dashboard lists.
const dashboardReports = 30

// errAgentNotBuilt is what the agent's views say until its boot step ran.
var errAgentNotBuilt = errors.New("the agent is not built yet: the daemon is still booting, or its agent step failed (see /health)")

// viewDeps fills the dashboard's views from the running daemon: its
// metrics registry, its log and audit feeds, the agent's lockdown, MCP
// host, token counter and memory, the maintenance scheduler's dream
// reports, and the kill switch (the same panic shutdown as POST
// /api/v1/panic and `talos panic`).
func (dd *daemonDashboard) viewDeps(deps *dashboard.Deps, d **daemon.Daemon, agent *daemonAgent, maint *host.Maintenance) {
	deps.Logs, deps.Audit = dd.logs, dd.audit
	deps.Metrics = func(ctx context.Context) ([]dashboard.Metric, error) {
		if *d == nil || (*d).Metrics() == nil {
			return nil, errors.New("the daemon is still booting: its metrics are not served yet")
		}
		return dashboard.GatherMetrics((*d).Metrics().Registry())(ctx)
	}
	get := func() (*host.Agent, error) {
		if a := agent.get(); a != nil {
			return a, nil
		}
		return nil, errAgentNotBuilt
	}
	deps.Turns = agentTurns{get}
	deps.Lockdown = func(context.Context) (firewall.LockdownState, error) {
		a, err := get()
		if err != nil {
			return firewall.LockdownState{}, err
		}
		return a.Lockdown.State(), nil
	}
	deps.Unlock = func(ctx context.Context, code string) (firewall.UnlockResult, error) {
		a, err := get()
		if err != nil {
			return "", err
		}
		return a.Lockdown.Unlock(ctx, code, "operator:dashboard")
	}
	deps.MCPPending = func(context.Context) ([]dashboard.MCPPending, error) {
		a, err := get()
		if err != nil {
			return nil, err
		}
		if a.MCP == nil {
			return nil, nil
		}
		var out []dashboard.MCPPending
		for _, s := range a.MCP.Status() {
			diff, reason, ok := a.MCP.Pending(s.Name)
			if !ok {
				continue
			}
			var ch []string
			for _, t := range diff.Added {
				ch = append(ch, "added "+t.Name)
			}
			for _, t := range diff.Changed {
				ch = append(ch, "changed "+t.Name)
			}
			for _, n := range diff.Removed {
				ch = append(ch, "removed "+n)
			}
			out = append(out, dashboard.MCPPending{Server: s.Name, Reason: reason, Changes: strings.Join(ch, ", ") + " (review and approve with `talos mcp`)"})
		}
		return out, nil
	}
	deps.Tokens = func(ctx context.Context) (orchestrator.TokenSummary, error) {
		a, err := get()
		if err != nil {
			return orchestrator.TokenSummary{}, err
		}
		return a.Tokens.Summary(ctx)
	}
	deps.Dreams = func(context.Context) ([]dashboard.DreamView, error) {
		reps, err := maint.Reports(dashboardReports)
		if err != nil {
			return nil, err
		}
		out := make([]dashboard.DreamView, 0, len(reps))
		for _, r := range reps {
			out = append(out, dashboard.DreamView{ID: r.ID, Kind: string(r.Kind), Outcome: string(r.Outcome), Started: r.Started,
				Duration: r.Duration().Round(time.Millisecond).String(), Summary: r.Summary()})
		}
		return out, nil
	}
	deps.Memory = agentMemory{get: get, ceiling: dd.ceiling}
	deps.Panic = func(_ context.Context, reason string) error {
		if dd.panic == nil {
			return errors.New("the kill switch is not armed yet: the daemon is still starting; use `talos panic`")
		}
		dd.panic("operator:dashboard", reason)
		return nil
	}
}

// agentTurns runs the WebSocket chat's turns on the agent's orchestrator.
type agentTurns struct{ get func() (*host.Agent, error) }

func (t agentTurns) Chat(ctx context.Context, turn orchestrator.Turn) (*orchestrator.Reply, error) {
	a, err := t.get()
	if err != nil {
		return nil, err
	}
	return a.Orchestrator.Chat(ctx, turn)
}

var _ chatapi.Chatter = agentTurns{}

// agentMemory is the agent's long-term memory for the dashboard's memory
// view, as `talos memory` works on it.
type agentMemory struct {
	get     func() (*host.Agent, error)
	ceiling int
}

func (m agentMemory) Stats(ctx context.Context) (dashboard.MemoryStats, error) {
	a, err := m.get()
	if err != nil {
		return dashboard.MemoryStats{}, err
	}
	plan, err := a.Pruner.Plan(ctx)
	if err != nil {
		return dashboard.MemoryStats{}, err
	}
	return dashboard.MemoryStats{Count: plan.Count, Ceiling: m.ceiling, PruneTrigger: plan.Trigger, PruneTarget: plan.Target,
		Store: a.MemoryWhere, Archive: host.MemoryArchiveFile}, nil
}

func (m agentMemory) Search(ctx context.Context, text string, k int) ([]dashboard.MemoryHit, error) {
	a, err := m.get()
	if err != nil {
		return nil, err
	}
	res, err := a.Retriever.Retrieve(ctx, rag.Query{Text: text, TopK: k, Budget: rag.DefaultBudget})
	if err != nil {
		return nil, err
	}
	out := make([]dashboard.MemoryHit, 0, len(res.Items))
	for _, it := range res.Items {
		out = append(out, dashboard.MemoryHit{ID: it.ID, Similarity: it.Similarity, Source: string(it.Source), Trusted: it.Trusted, Text: it.Text})
	}
	return out, nil
}

func (m agentMemory) Prune(ctx context.Context) (string, error) {
	a, err := m.get()
	if err != nil {
		return "", err
	}
	rep, err := a.Pruner.Run(ctx, prune.Params{TriggerRatio: prune.DefaultTriggerRatio, TargetRatio: prune.DefaultTargetRatio, Reason: "dashboard"}, false)
	if rep == nil {
		return "", err
	}
	if !rep.Triggered {
		return fmt.Sprintf("nothing to prune: %d memories, the prune starts above %d", rep.Count, rep.Trigger), err
	}
	return fmt.Sprintf("pruned %d memories (run %s, archived to %s)", rep.Deleted, rep.Run, host.MemoryArchiveFile), err
}

func (m agentMemory) Restore(ctx context.Context, run string) (string, error) {
	a, err := m.get()
	if err != nil {
		return "", err
	}
	rep, err := a.Pruner.Restore(ctx, prune.RestoreOptions{Run: run})
	if rep == nil {
		return "", err
	}
	if rep.NoArchive {
		return "nothing to restore: no memory has been pruned yet", err
	}
	return fmt.Sprintf("restored %d memories (%d already present, skipped; %d archive entries matched)", rep.Restored, rep.Skipped, rep.Entries), err
}
