package sandbox_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

type deprecations struct{ got []strikes.Deprecation }

func (d *deprecations) Deprecate(_ context.Context, dep strikes.Deprecation) error {
	d.got = append(d.got, dep)
	return nil
}

// TestManagerRunsAndStrikes is the caller's whole loop: a skill is added to
// quarantine and scanned, each run is bracketed by StartRun and FinishRun
// with the sandbox's verdict, and a failed run's strike goes to the
// tracker. A clean skill ends passed with a clean run; a failing one ends
// failed with an exception strike; a file edited after StartRun's check is
// refused by the sandbox before any container starts.
func TestManagerRunsAndStrikes(t *testing.T) {
	s, c := newSandbox(t, nil)
	ctx := context.Background()
	root := t.TempDir()
	m, err := quarantine.New(quarantine.Config{Dir: filepath.Join(root, "skills"), CodeKey: bytes.Repeat([]byte{7}, quarantine.MinCodeKeyLen)},
		quarantinetest.NewStore(), &quarantinetest.Inbox{})
	if err != nil {
		t.Fatal(err)
	}
	dep := &deprecations{}
	tr, err := strikes.New(strikes.Config{Key: bytes.Repeat([]byte{9}, strikes.MinKeyLen)}, strikestest.NewMemoryStore(), dep)
	if err != nil {
		t.Fatal(err)
	}
	add := func(id, code string) quarantine.Record {
		rec, err := m.Add(ctx, writeSkill(t, id, code, false), quarantine.Source{Type: quarantine.SourceUser, Origin: "test"}, "user:test")
		if err != nil {
			t.Fatal(err)
		}
		if rep, _, err := m.Scan(ctx, rec.Key, "system"); err != nil || !rep.Passed() {
			t.Fatalf("scan of %s: %v %+v", id, err, rep)
		}
		return rec
	}
	run := func(rec quarantine.Record) (sandbox.Result, quarantine.Record) {
		rec, err := m.StartRun(ctx, rec.Key, "sandbox")
		if err != nil {
			t.Fatal(err)
		}
		res, err := s.Run(ctx, sandbox.Request{Dir: rec.Path, Hash: rec.Key.Hash})
		if err != nil {
			if _, ierr := m.InterruptRun(ctx, rec.Key, "sandbox", err.Error()); ierr != nil {
				t.Fatal(ierr)
			}
			return res, rec
		}
		after, err := m.FinishRun(ctx, rec.Key, "sandbox", res.RunResult())
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := res.Failure(); ok {
			if _, err := tr.Record(ctx, strikes.Skill{ID: rec.Key.ID, Version: rec.Key.Version, Hash: rec.Key.Hash}, f); err != nil {
				t.Fatal(err)
			}
		}
		return res, after
	}

	good := add("good_skill", "print(sum(range(10)))\n")
	res, after := run(good)
	if !res.Verdict.Passed() || after.State != quarantine.StatePassed || after.CleanRuns != 1 || string(res.Stdout) != "45\n" {
		t.Errorf("good skill: %+v, state %s, clean runs %d, stdout %q", res.Verdict, after.State, after.CleanRuns, res.Stdout)
	}

	bad := add("bad_skill", "data = {}\nprint(data['title'])\n")
	res, after = run(bad)
	if res.Verdict.Strike != strikes.Exception || after.State != quarantine.StateFailed {
		t.Errorf("bad skill: %+v, state %s", res.Verdict, after.State)
	}
	st, err := tr.Active(ctx, strikes.Skill{ID: bad.Key.ID, Version: bad.Key.Version, Hash: bad.Key.Hash})
	if err != nil {
		t.Fatal(err)
	}
	if len(st) != 1 || st[0].Type != strikes.Exception || st[0].ExceptionType != "KeyError" {
		t.Errorf("strikes %+v", st)
	}

	edited := add("edited_skill", "print('v1')\n")
	if _, err := m.StartRun(ctx, edited.Key, "sandbox"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(edited.Path, "main.py"), []byte("print('v2')\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.Run(ctx, sandbox.Request{Dir: edited.Path, Hash: edited.Key.Hash})
	if !errors.Is(err, talos.ErrBadSignature) {
		t.Errorf("edited skill: err = %v, want T402", err)
	}
	if l := leftovers(t, c); len(l) > 0 {
		t.Errorf("containers left: %v", l)
	}
}
