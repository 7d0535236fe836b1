package genesis

import (
	"context"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strconv"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/tlog"
	"github.com/talos-ironclad/talos/quarantine"
)

// Config says which admitted genesis skills are active.
type Config struct {
	// TrustLevel is TRUST_LEVEL (0–5): a skill is active only when it is
	// at least the skill's MinTrust (see the Trust… constants).
	TrustLevel int
	// Autoload is SKILL_AUTOLOAD_ENABLED: false admits the skills (records
	// and files kept up to date) but makes none active, so the model is
	// offered none of them.
	Autoload bool
	// Origin names the binary in the records' source, such as
	// "talos 1.4.0"; empty means "talos".
	Origin string
}

// Admitter records genesis skills; *quarantine.Manager is one.
type Admitter interface {
	AdmitGenesis(ctx context.Context, src, pinned, origin, actor string) (quarantine.Record, error)
}

// Skill is the admission outcome of one genesis skill.
type Skill struct {
	Pin
	// Record is the quarantine record (zero when admission failed before
	// one existed).
	Record quarantine.Record
	// Admitted is true when the files on disk hash to the pin.
	Admitted bool
	// Active is true when the skill may be offered to the model.
	Active bool
	// Writable is true when the skill may write to the workspace (its pin
	// asks for write and TrustLevel is at least TrustWrite).
	Writable bool
	// Why says why the skill is not active ("" when it is).
	Why string
}

// Report is the outcome of Admit.
type Report struct {
	Skills []Skill
	// Err is why the whole bundle was refused (a bad signature, a pin list
	// that does not parse); nil otherwise.
	Err error
}

// Active returns the active skills.
func (r Report) Active() []Skill {
	var out []Skill
	for _, s := range r.Skills {
		if s.Active {
			out = append(out, s)
		}
	}
	return out
}

// Admit verifies the bundle's signed pin list and admits each of its
// skills through m (quarantine.Manager.AdmitGenesis): the skill's files,
// written out of the bundle to a private temporary folder, must hash to
// their pin, and the copy on disk under the skills folder must too. It
// never fails the caller: a refused bundle or skill is in the Report,
// logged, and written to audit (tier 1) as "genesis_refused" with the
// skill, the error code and the reason; a summary "genesis_admission"
// record follows. Calling it again at every boot changes nothing once the
// skills are admitted.
func Admit(ctx context.Context, b Bundle, cfg Config, m Admitter, audit, log *slog.Logger) Report {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Origin == "" {
		cfg.Origin = "talos"
	}
	var rep Report
	pins, err := b.Verify()
	if err != nil {
		rep.Err = err
		tlog.Audit(ctx, audit, "genesis_refused", slog.String("skill", "*"), slog.String("code", string(talos.CodeOf(err))), slog.String("reason", err.Error()))
		log.ErrorContext(ctx, "genesis skills refused: the pin list does not verify; no genesis skill is active", "err", err)
		return rep
	}
	tmp, err := os.MkdirTemp("", "talos-genesis-")
	if err != nil {
		rep.Err = talos.E(talos.CodeDirPermissions, "genesis.Admit", "cannot create a temporary folder for the built-in skills", err)
		log.ErrorContext(ctx, "genesis skills not admitted", "err", rep.Err)
		return rep
	}
	defer os.RemoveAll(tmp)
	active := 0
	for _, p := range pins.Skills {
		s := Skill{Pin: p}
		src := filepath.Join(tmp, p.ID)
		err := extract(b.FS, path.Join(SkillsDir, p.ID), src)
		if err == nil {
			s.Record, err = m.AdmitGenesis(ctx, src, p.Hash, cfg.Origin, "system")
		}
		switch {
		case err != nil:
			s.Why = "refused: " + err.Error()
			tlog.Audit(ctx, audit, "genesis_refused", slog.String("skill", p.ID+"@"+p.Version), slog.String("code", string(talos.CodeOf(err))), slog.String("reason", err.Error()))
			log.ErrorContext(ctx, "genesis skill refused", "skill", p.ID, "err", err)
		case !cfg.Autoload:
			s.Admitted = true
			s.Why = "SKILL_AUTOLOAD_ENABLED is false"
		case cfg.TrustLevel < p.MinTrust:
			s.Admitted = true
			s.Why = "needs TRUST_LEVEL " + strconv.Itoa(p.MinTrust) + " or more (it is " + strconv.Itoa(cfg.TrustLevel) + ")"
		default:
			s.Admitted, s.Active = true, true
			s.Writable = p.Workspace == WorkspaceWrite && cfg.TrustLevel >= TrustWrite
			active++
		}
		rep.Skills = append(rep.Skills, s)
	}
	refused := 0
	for _, s := range rep.Skills {
		if !s.Admitted {
			refused++
		}
	}
	tlog.Audit(ctx, audit, "genesis_admission", slog.Int("skills", len(rep.Skills)), slog.Int("active", active), slog.Int("refused", refused),
		slog.Int("trust_level", cfg.TrustLevel), slog.Bool("autoload", cfg.Autoload))
	log.InfoContext(ctx, "genesis skills admitted", "skills", len(rep.Skills), "active", active, "refused", refused)
	return rep
}

// extract copies the folder dir of fsys to dst (files 0644, folders 0755).
func extract(fsys fs.FS, dir, dst string) error {
	const op = "genesis.Admit"
	return fs.WalkDir(fsys, dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return talos.E(talos.CodeBadSignature, op, "the bundle has no readable skill folder "+dir, err)
		}
		rel, _ := filepath.Rel(dir, filepath.FromSlash(p))
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if !d.Type().IsRegular() {
			return talos.Errorf(talos.CodeBadSignature, op, "%s in the bundle is not a regular file", p)
		}
		in, err := fsys.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, in); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	})
}
