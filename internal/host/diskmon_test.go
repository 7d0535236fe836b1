package host_test

import (
	"context"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/dream"
	"github.com/talos-ironclad/talos/internal/host"
)

type alerts struct {
	mu  sync.Mutex
	got []dream.Alert
}

func (a *alerts) Alert(_ context.Context, al dream.Alert) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.got = append(a.got, al)
	return nil
}

func fixedUsage(frac float64) host.DiskUsage {
	return func(string) (uint64, uint64, error) { return uint64(frac * 1000), 1000, nil }
}

func TestDiskMonitorActsByLevel(t *testing.T) {
	cfg := loadConfig(t, nil)
	home := cfg.Home
	logs := filepath.Join(home, "logs")
	old := 2 * 24 * time.Hour
	write(t, filepath.Join(logs, "tier1", "audit.000001.log"), "audit", 30*24*time.Hour)
	write(t, filepath.Join(logs, "tier2", "ops.000003.log.gz"), "x", old)
	write(t, filepath.Join(logs, "tier3", "debug.000002.log"), "debug lines", 0)
	write(t, filepath.Join(home, "tmp", "scratch", "f"), "tmp", 0)
	m, err := host.NewMaintenance(cfg, host.MaintenanceDeps{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	al := &alerts{}
	mon := &host.DiskMonitor{Home: home, Maint: m, Alerter: al}
	ctx := context.Background()

	mon.Usage = fixedUsage(0.5)
	if lvl, err := mon.Check(ctx); lvl != host.DiskOK || err != nil {
		t.Fatalf("50%%: %v %v", lvl, err)
	}
	mon.Usage = fixedUsage(0.85)
	if lvl, err := mon.Check(ctx); lvl != host.DiskWarning || err != nil {
		t.Fatalf("85%%: %v %v", lvl, err)
	}
	if st, _ := m.State(time.Now()); st.Last == nil || st.Last.Kind != dream.KindAutomatic {
		t.Errorf("a warning did not run the maintenance cycle: %+v", st.Last)
	}
	// Critical: 3 days of logs kept, so the 2-day-old compressed log stays.
	mon.Usage = fixedUsage(0.92)
	if lvl, err := mon.Check(ctx); lvl != host.DiskCritical || err != nil {
		t.Fatalf("92%%: %v %v", lvl, err)
	}
	if exists(filepath.Join(home, "tmp", "scratch")) || !exists(filepath.Join(home, "tmp")) {
		t.Error("tmp was not emptied, or was removed itself")
	}
	if !exists(filepath.Join(logs, "tier3", "debug.000002.log.gz")) || !exists(filepath.Join(logs, "tier2", "ops.000003.log.gz")) {
		t.Error("critical: logs not compressed, or a 2-day-old log deleted")
	}
	// Emergency: 1 day kept, an alert, and tier 1 untouched.
	mon.Usage = fixedUsage(0.97)
	if lvl, err := mon.Check(ctx); lvl != host.DiskEmergency || err != nil {
		t.Fatalf("97%%: %v %v", lvl, err)
	}
	if exists(filepath.Join(logs, "tier2", "ops.000003.log.gz")) {
		t.Error("emergency kept a 2-day-old tier-2 log")
	}
	if !exists(filepath.Join(logs, "tier1", "audit.000001.log")) {
		t.Fatal("the disk monitor deleted a tier-1 audit log")
	}
	if len(al.got) != 1 || al.got[0].Severity != talos.SeverityCritical || mon.Level() != host.DiskEmergency {
		t.Errorf("alerts %+v, level %v", al.got, mon.Level())
	}
	if mon.Detail() == "" {
		t.Error("no detail")
	}
}

func TestDiskMonitorChecksEveryFiveMinutes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var n atomic.Int32
		mon := &host.DiskMonitor{Home: t.TempDir(), Usage: func(string) (uint64, uint64, error) {
			n.Add(1)
			return 1, 10, nil
		}}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { mon.Run(ctx); close(done) }()
		synctest.Wait()
		if n.Load() != 1 {
			t.Fatalf("%d checks at start, want 1", n.Load())
		}
		time.Sleep(host.DiskInterval - time.Second)
		synctest.Wait()
		if n.Load() != 1 {
			t.Fatalf("%d checks before 300 s", n.Load())
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if n.Load() != 2 {
			t.Fatalf("%d checks at 300 s, want 2", n.Load())
		}
		cancel()
		<-done
	})
}
