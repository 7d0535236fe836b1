package ragtest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/rag"
	"github.com/talos-ironclad/talos/rag/ragtest"
)

// brokenHistory fails every call.
type brokenHistory struct{}

var errBroken = errors.New("backend down")

func (brokenHistory) Append(context.Context, string, rag.Message) error { return errBroken }
func (brokenHistory) Recent(context.Context, string, int) ([]rag.Message, error) {
	return nil, errBroken
}
func (brokenHistory) Clear(context.Context, string) error { return errBroken }

// TestBrokenHistoryRun is the child of TestSuiteFailsABrokenAdapter; it
// runs only when that test starts it.
func TestBrokenHistoryRun(t *testing.T) {
	if os.Getenv("RAGTEST_BROKEN_CHILD") != "1" {
		t.Skip("run by TestSuiteFailsABrokenAdapter")
	}
	ragtest.RunHistory(t, ragtest.HistoryHarness{
		New: func(*testing.T, rag.HistoryConfig) rag.History { return brokenHistory{} },
	})
}

// TestSuiteFailsABrokenAdapter pins that the history suite reports a
// failing adapter as failed subtests, not as a panic of the whole run.
func TestSuiteFailsABrokenAdapter(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child test process")
	}
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBrokenHistoryRun$", "-test.v")
	cmd.Env = append(os.Environ(), "RAGTEST_BROKEN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("the suite passed a history whose every call fails:\n%s", out)
	}
	if strings.Contains(string(out), "panic") {
		t.Fatalf("the suite panicked instead of failing:\n%s", out)
	}
	for _, sub := range []string{"LastN", "DefaultLimitIs10", "SessionsAreSeparate"} {
		if !strings.Contains(string(out), "--- FAIL: TestBrokenHistoryRun/"+sub) || !strings.Contains(string(out), "backend down") {
			t.Errorf("subtest %s not failed with the adapter's error:\n%s", sub, out)
		}
	}
}
