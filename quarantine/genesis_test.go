package quarantine_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
)

func TestAdmitGenesis(t *testing.T) {
	e := newEnv(t)
	src := e.skill("1.0.0", "print('hi')\n")
	c, err := quarantine.HashDir(src)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := e.m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != quarantine.StatePromoted || rec.Source.Type != quarantine.SourceGenesis || rec.ActivePath != e.m.ActivePath(rec.Key) {
		t.Fatalf("record %+v", rec)
	}
	if ac, err := quarantine.HashDir(rec.ActivePath); err != nil || ac.Hash != c.Hash {
		t.Fatalf("active copy: %v %v", ac.Hash, err)
	}

	// A second boot: the same record, no new audit entry.
	again, err := e.m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system")
	if err != nil || again.Key != rec.Key || again.State != quarantine.StatePromoted {
		t.Fatalf("second admission: %+v %v", again, err)
	}
	audit, _ := e.m.Audit(e.ctx, rec.Key)
	if len(audit) != 1 || audit[0].Event != quarantine.EventGenesisAdmitted {
		t.Fatalf("audit after two admissions: %+v", audit)
	}

	// The active copy edited on disk: refused, audited, left in place.
	if err := os.WriteFile(filepath.Join(rec.ActivePath, "main.py"), []byte("import os\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = e.m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system")
	if talos.CodeOf(err) != talos.CodeBadSignature {
		t.Fatalf("tampered active copy: %v", err)
	}
	audit, _ = e.m.Audit(e.ctx, rec.Key)
	if last := audit[len(audit)-1]; last.Event != quarantine.EventGenesisRefused {
		t.Fatalf("no refusal in the audit trail: %+v", audit)
	}
	if _, err := e.m.Verify(e.ctx); err != nil {
		t.Fatal(err)
	}

	// Removed by a person: restored from the verified quarantined copy.
	if err := os.RemoveAll(rec.ActivePath); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system"); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if ac, err := quarantine.HashDir(rec.ActivePath); err != nil || ac.Hash != c.Hash {
		t.Fatalf("restored copy: %v %v", ac.Hash, err)
	}

	// Deprecated stays deprecated.
	if _, err := e.m.Deprecate(e.ctx, rec.Key, "user:alice", "not wanted"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system"); talos.CodeOf(err) != talos.CodePolicyDenied {
		t.Fatalf("deprecated genesis skill re-admitted: %v", err)
	}
}

func TestAdmitGenesisRefusals(t *testing.T) {
	e := newEnv(t)
	src := e.skill("1.0.0", "print('hi')\n")
	other := e.skill("1.0.0", "print('other')\n")
	oc, _ := quarantine.HashDir(other)
	// Files that do not hash to the pin.
	if _, err := e.m.AdmitGenesis(e.ctx, src, oc.Hash, "talos test", "system"); talos.CodeOf(err) != talos.CodeBadSignature {
		t.Fatalf("wrong pin: %v", err)
	}
	if _, err := e.m.AdmitGenesis(e.ctx, src, "nothex", "talos test", "system"); talos.CodeOf(err) != talos.CodeBadSignature {
		t.Fatalf("malformed pin: %v", err)
	}
	// A folder already in active with other content on the first admission.
	c, _ := quarantine.HashDir(src)
	dst := filepath.Join(e.root, "skills", quarantine.ActiveDir, "hello_world-1.0.0")
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dst, "skill.yaml"), []byte("id: hello_world\n"), 0o644)
	rec, err := e.m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system")
	if talos.CodeOf(err) != talos.CodeBadSignature {
		t.Fatalf("foreign active folder: %v", err)
	}
	audit, _ := e.m.Audit(e.ctx, rec.Key)
	if len(audit) != 2 || audit[1].Event != quarantine.EventGenesisRefused {
		t.Fatalf("audit: %+v", audit)
	}
	// Add refuses the genesis source.
	if _, err := e.m.Add(e.ctx, src, quarantine.Source{Type: quarantine.SourceGenesis, Origin: "x"}, "system"); err == nil {
		t.Fatal("Add accepted source genesis")
	}
}

func TestAddRefusesReservedIDs(t *testing.T) {
	e := newEnv(t)
	m, err := quarantine.New(quarantine.Config{Dir: filepath.Join(e.root, "skills2"), CodeKey: codeKey, ReservedIDs: []string{"hello_world"}}, e.store, e.note)
	if err != nil {
		t.Fatal(err)
	}
	src := e.skill("1.0.0", "print('hi')\n")
	if _, err := m.Add(e.ctx, src, quarantine.Source{Type: quarantine.SourceLLM, Origin: "model"}, "system"); talos.CodeOf(err) != talos.CodePolicyDenied {
		t.Fatalf("reserved id added: %v", err)
	}
	c, _ := quarantine.HashDir(src)
	if _, err := m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system"); err != nil {
		t.Fatalf("AdmitGenesis of a reserved id: %v", err)
	}
}

// deprecatingStore deprecates a record through m right after the first
// read of it that arms it: strikes deprecating a skill while AdmitGenesis
// works from what it read.
type deprecatingStore struct {
	quarantine.Store
	m     *quarantine.Manager
	armed bool
}

func (s *deprecatingStore) Get(ctx context.Context, k quarantine.Key) (quarantine.Record, error) {
	rec, err := s.Store.Get(ctx, k)
	if s.armed {
		s.armed = false
		if _, derr := s.m.Deprecate(ctx, k, "strikes", "3 strikes"); derr != nil {
			return rec, derr
		}
	}
	return rec, err
}

// A genesis skill deprecated while its removed active copy is restored
// does not keep the restored copy, and is refused.
func TestAdmitGenesisRacingADeprecation(t *testing.T) {
	root := t.TempDir()
	st := &deprecatingStore{Store: quarantinetest.NewStore()}
	m, err := quarantine.New(quarantine.Config{Dir: filepath.Join(root, "skills"), CodeKey: codeKey}, st, &capture{})
	if err != nil {
		t.Fatal(err)
	}
	st.m = m
	e := &env{t: t, ctx: context.Background(), root: root}
	src := e.skill("1.0.0", "print('hi')\n")
	c, err := quarantine.HashDir(src)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(rec.ActivePath); err != nil {
		t.Fatal(err)
	}
	st.armed = true
	if _, err := m.AdmitGenesis(e.ctx, src, c.Hash, "talos test", "system"); talos.CodeOf(err) != talos.CodePolicyDenied {
		t.Fatalf("admission racing a deprecation: %v, want T406", err)
	}
	if _, err := os.Stat(rec.ActivePath); !os.IsNotExist(err) {
		t.Fatalf("the deprecated skill's active copy was restored: %v", err)
	}
}
