package genesis_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/genesis"
	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkGenesisSkillStart times one call of each genesis skill on the
// harness's engine: "cold" builds a new sandbox (its socket proxy) and a
// Runner and makes the first call; "warm" is a call on a sandbox already
// in use. Every call is a fresh container either way. Run it with
// -benchtime=20x for the p50 of 20; it reports the medians in ms.
func BenchmarkGenesisSkillStart(b *testing.B) {
	host := testenv.DockerHost(b)
	img := testenv.PythonImage(b)
	m, _ := newManagerTB(b)
	rep := genesis.Admit(context.Background(), genesis.Builtin(), genesis.Config{TrustLevel: genesis.TrustCode, Autoload: true}, m, nil, nil)
	wsRoot := filepath.Join(b.TempDir(), "workspace")
	ws := filepath.Join(wsRoot, "default")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		b.Fatal(err)
	}
	if os.Getuid() == 0 {
		_ = os.Chown(ws, 65534, 65534)
	}
	stage := b.TempDir()
	open := func() (*genesis.Runner, *sandbox.Sandbox) {
		sb, err := sandbox.New(sandbox.Config{DockerHost: host, Image: img, Timeout: 30 * time.Second,
			StagingDir: filepath.Join(stage, "stage"), WorkspaceDir: wsRoot})
		if err != nil {
			b.Fatal(err)
		}
		return genesis.NewRunner(sb, ws, rep), sb
	}
	ctx := context.Background()
	calls := map[string]func(*genesis.Runner){
		genesis.FileManager: func(r *genesis.Runner) {
			if _, err := r.Files(ctx, genesis.FileRequest{Op: "list", Path: ""}); err != nil {
				b.Fatal(err)
			}
		},
		genesis.CodeExecutor: func(r *genesis.Runner) {
			if cr, err := r.Code(ctx, "print('hello')"); err != nil || cr.ExitCode != 0 {
				b.Fatal(cr, err)
			}
		},
	}
	warmR, warmSB := open()
	defer warmSB.Close()
	for _, call := range calls { // image layers and page cache
		call(warmR)
	}
	cold, warm := map[string][]time.Duration{}, map[string][]time.Duration{}
	b.ResetTimer()
	for range b.N {
		for _, id := range []string{genesis.FileManager, genesis.CodeExecutor} {
			t0 := time.Now()
			r, sb := open()
			calls[id](r)
			cold[id] = append(cold[id], time.Since(t0))
			sb.Close()
			t0 = time.Now()
			calls[id](warmR)
			warm[id] = append(warm[id], time.Since(t0))
		}
	}
	b.StopTimer()
	for _, id := range []string{genesis.FileManager, genesis.CodeExecutor} {
		b.ReportMetric(float64(p50(cold[id]).Microseconds())/1000, id+"-cold-p50-ms")
		b.ReportMetric(float64(p50(warm[id]).Microseconds())/1000, id+"-warm-p50-ms")
	}
}
