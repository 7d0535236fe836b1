package sqlstore_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sqlstore"
	"github.com/talos-ironclad/talos/sqldb/sqldbtest"
)

type lastCode struct {
	mu   sync.Mutex
	code string
}

func (l *lastCode) Notify(_ context.Context, n quarantine.Notice) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.code = n.Code
	return nil
}
func (l *lastCode) Name() string { return "test" }

// TestManagerOnBothDatabases runs a skill from added to promoted on each
// real database and checks the audit chain it leaves.
func TestManagerOnBothDatabases(t *testing.T) {
	ctx := context.Background()
	for _, d := range sqldbtest.Dialects {
		t.Run(string(d), func(t *testing.T) {
			s, err := sqlstore.New(ctx, sqldbtest.Open(t, d), auditKey)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			note := &lastCode{}
			m, err := quarantine.New(quarantine.Config{Dir: filepath.Join(root, "skills"), CodeKey: auditKey, MinAge: time.Nanosecond}, s, note)
			if err != nil {
				t.Fatal(err)
			}
			src := filepath.Join(root, "src")
			os.MkdirAll(src, 0o755)
			os.WriteFile(filepath.Join(src, "skill.yaml"), []byte("id: hello_world\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"), 0o644)
			os.WriteFile(filepath.Join(src, "main.py"), []byte("print('hi')\n"), 0o644)
			rec, err := m.Add(ctx, src, quarantine.Source{Type: quarantine.SourceUser, Origin: "alice"}, "user:alice")
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := m.Scan(ctx, rec.Key, "system"); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < quarantine.DefaultMinCleanRuns; i++ {
				if _, err := m.StartRun(ctx, rec.Key, "sandbox"); err != nil {
					t.Fatal(err)
				}
				if _, err := m.FinishRun(ctx, rec.Key, "sandbox", quarantine.RunResult{Passed: true}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := m.RequestPromotion(ctx, rec.Key, "user:alice"); err != nil {
				t.Fatal(err)
			}
			got, err := m.Approve(ctx, rec.Key, note.code, "user:alice")
			if err != nil || got.State != quarantine.StatePromoted {
				t.Fatalf("approve: %+v %v", got, err)
			}
			head, err := m.Verify(ctx)
			if err != nil || head.Entries != 11 {
				t.Fatalf("Verify = %+v, %v; want 11 entries", head, err)
			}
			stored, _ := m.Get(ctx, rec.Key)
			if stored.Approval == nil || stored.Approval.Status != quarantine.ApprovalApproved || stored.Approval.CodeHash == note.code {
				t.Fatalf("stored approval %+v", stored.Approval)
			}
		})
	}
}
