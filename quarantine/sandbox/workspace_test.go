package sandbox

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/talos-ironclad/talos"
)

func TestWorkspaceChecks(t *testing.T) {
	root := t.TempDir()
	ws := filepath.Join(root, "default")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(ws, link); err != nil {
		t.Fatal(err)
	}
	s := &Sandbox{cfg: Config{User: DefaultUser, WorkspaceDir: root}}
	binds, env, _, err := s.workspace(Request{Workspace: ws})
	if err != nil || !slices.Equal(binds, []string{ws + ":" + WorkspaceMount + ":ro"}) || env != nil {
		t.Fatalf("read-only: %v %v %v", binds, env, err)
	}
	binds, env, _, err = s.workspace(Request{Workspace: ws, WorkspaceWritable: true})
	if err != nil || !slices.Equal(binds, []string{ws + ":" + WorkspaceMount + ":rw"}) || !slices.Equal(env, []string{EnvWritable + "=/workspace/"}) {
		t.Fatalf("read-write: %v %v %v", binds, env, err)
	}
	for name, req := range map[string]Request{
		"outside":           {Workspace: "/etc"},
		"sibling prefix":    {Workspace: root + "x"},
		"unclean":           {Workspace: ws + "/../default"},
		"relative":          {Workspace: "default"},
		"a link":            {Workspace: link},
		"missing":           {Workspace: filepath.Join(root, "nope")},
		"writable, no path": {WorkspaceWritable: true},
	} {
		if _, _, _, err := s.workspace(req); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	none := &Sandbox{cfg: Config{User: DefaultUser}}
	if _, _, _, err := none.workspace(Request{Workspace: ws}); talos.CodeOf(err) != talos.CodePolicyDenied {
		t.Errorf("no WorkspaceDir: %v", err)
	}
	if p := Profile("/stage", root); !slices.Equal(p.BindAllowlist, []string{"/stage", root}) {
		t.Errorf("profile binds %v", p.BindAllowlist)
	}
	if p := profileOf(Config{StagingDir: "/stage"}); !slices.Equal(p.BindAllowlist, []string{"/stage"}) {
		t.Errorf("profile without workspace binds %v", p.BindAllowlist)
	}
	if _, err := (Config{WorkspaceDir: "rel"}).withDefaults("/tmp"); err == nil {
		t.Error("a relative WorkspaceDir was accepted")
	}
}
