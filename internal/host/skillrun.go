package host

import (
	"context"
	"errors"
	"log/slog"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/strikes"
)

// SkillRun is one sandboxed run of a skill and what it did to the skill's
// record.
type SkillRun struct {
	Record quarantine.Record // after the run
	Result sandbox.Result
	// Strike is the strike the run recorded, nil after a clean run.
	Strike *strikes.Result
}

// RunOptions are the optional parts of Skills.Run.
type RunOptions struct {
	Image string       // the Python image; empty means sandbox.DefaultImage
	Audit *slog.Logger // the sandbox proxy's audit records (tier 1); nil discards
	Log   *slog.Logger // operational messages; nil discards
}

// Run runs rec's skill once in a fresh sandbox with args, as the CLI's
// `talos skill run` and the daemon's API do: refused while the disk is at
// its emergency level (T103); the record goes executing → passed or failed
// (a run that could not be judged is interrupted instead); a failure is
// recorded as a strike of its type. A run that happened returns a nil
// error whatever its verdict.
func (s *Skills) Run(ctx context.Context, rec quarantine.Record, args []string, actor string, o RunOptions) (SkillRun, error) {
	const op = "host.Skills.Run"
	cfg := s.cfg
	if lvl, frac, err := DiskLevelOf(cfg.Home, s.diskUsage); err == nil && lvl == DiskEmergency {
		return SkillRun{Record: rec}, talos.Errorf(talos.CodeDiskCritical, op, "the disk of %s is %.1f%% full (emergency level): skill runs are paused until space is freed", cfg.Home, frac*100)
	}
	sb, err := Sandbox(cfg, o.Image, o.Audit, o.Log)
	if err != nil {
		return SkillRun{Record: rec}, err
	}
	defer sb.Close()
	if rec, err = s.Quarantine.StartRun(ctx, rec.Key, actor); err != nil {
		return SkillRun{Record: rec}, err
	}
	res, err := sb.Run(ctx, sandbox.Request{Dir: rec.Path, Hash: rec.Hash, Args: args})
	if err != nil {
		if _, ierr := s.Quarantine.InterruptRun(context.WithoutCancel(ctx), rec.Key, actor, err.Error()); ierr != nil {
			err = errors.Join(err, ierr)
		}
		return SkillRun{Record: rec}, err
	}
	run := SkillRun{Result: res}
	if run.Record, err = s.Quarantine.FinishRun(ctx, rec.Key, actor, res.RunResult()); err != nil {
		return run, err
	}
	if f, ok := res.Failure(); ok {
		r, err := s.Strikes.Record(ctx, strikes.Skill{ID: rec.ID, Version: rec.Version, Hash: rec.Hash}, f)
		if err != nil {
			return run, err
		}
		run.Strike = &r
	}
	return run, nil
}
