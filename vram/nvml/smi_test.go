package nvml_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/nvml"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// fakeSMI writes an executable "nvidia-smi" shell script into a new
// directory. The script records its arguments (one per line) in args.log and
// appends a line to calls.log on every run, then runs body.
func fakeSMI(t *testing.T, body string) (dir string) {
	t.Helper()
	dir = t.TempDir()
	script := "#!/bin/sh\nfor a in \"$@\"; do echo \"$a\"; done > \"" + dir + "/args.log\"\necho run >> \"" + dir + "/calls.log\"\n" + body + "\n"
	if err := os.WriteFile(filepath.Join(dir, "nvidia-smi"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func calls(t *testing.T, dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "calls.log"))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "run")
}

func smiAt(dir string, cfg nvml.Config) *nvml.SMI {
	cfg.SMIPath = filepath.Join(dir, "nvidia-smi")
	return nvml.NewSMI(cfg)
}

func TestSMIReading(t *testing.T) {
	dir := fakeSMI(t, "echo '1536, 8192'")
	r, err := smiAt(dir, nvml.Config{}).Memory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Used != 1536*vram.MiB || r.Total != 8192*vram.MiB || r.Source != "nvidia-smi" || r.Stale {
		t.Fatalf("reading %+v", r)
	}
	args, _ := os.ReadFile(filepath.Join(dir, "args.log"))
	if got := strings.Fields(string(args)); strings.Join(got, " ") != "--query-gpu=memory.used,memory.total --format=csv,noheader,nounits" {
		t.Fatalf("nvidia-smi was run with %q", got)
	}
}

func TestSMISecondGPU(t *testing.T) {
	dir := fakeSMI(t, "printf '100, 8192\\n 2048 , 24576 \\n'")
	r, err := smiAt(dir, nvml.Config{Index: 1}).Memory(context.Background())
	if err != nil || r.Used != 2048*vram.MiB || r.Total != 24576*vram.MiB {
		t.Fatalf("GPU 1: %+v %v", r, err)
	}
	_, err = smiAt(dir, nvml.Config{Index: 2}).Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeGPUNotFound {
		t.Fatalf("GPU 2 of 2: %v, want GPU_NOT_FOUND", err)
	}
}

// PARSE_ERROR → USE_LAST_KNOWN: the last good reading comes back, Stale.
func TestSMIParseErrorUsesLastKnown(t *testing.T) {
	dir := fakeSMI(t, `if [ -f "`+"$(dirname \"$0\")"+`/broken" ]; then echo '[N/A], [N/A]'; else echo '1000, 8000'; fi`)
	s := smiAt(dir, nvml.Config{})
	good, err := s.Memory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := s.Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeParseError {
		t.Fatalf("[N/A] output: %v, want PARSE_ERROR", err)
	}
	if h := vram.HandlingFor(vram.KindOf(err)); h.Action != vram.ActionUseLastKnown {
		t.Fatalf("action %v", h.Action)
	}
	if !r.Stale || r.Used != good.Used || r.Total != good.Total {
		t.Fatalf("after a parse error got %+v, want the last known %+v marked stale", r, good)
	}
}

func TestSMIFailureKinds(t *testing.T) {
	for name, c := range map[string]struct {
		body string
		want vram.ProbeKind
	}{
		"driver":      {"echo \"NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.\"; exit 9", vram.ProbeDriverError},
		"mismatch":    {"echo 'Failed to initialize NVML: Driver/library version mismatch' >&2; exit 18", vram.ProbeDriverError},
		"no devices":  {"echo 'No devices were found'; exit 6", vram.ProbeGPUNotFound},
		"permissions": {"echo 'Insufficient Permissions' >&2; exit 4", vram.ProbePermissionDenied},
		"other":       {"echo 'something odd'; exit 3", vram.ProbeUnknown},
		"empty":       {"exit 0", vram.ProbeParseError},
		"garbage":     {"echo 'hello world'", vram.ProbeParseError},
	} {
		t.Run(name, func(t *testing.T) {
			dir := fakeSMI(t, c.body)
			r, err := smiAt(dir, nvml.Config{}).Memory(context.Background())
			if got := vram.KindOf(err); got != c.want {
				t.Fatalf("kind %v, want %v (err %v)", got, c.want, err)
			}
			if !errors.Is(err, talos.ErrGPUQuery) || r != (vram.Reading{}) {
				t.Fatalf("err %v reading %+v, want T110 and no reading", err, r)
			}
		})
	}
}

func TestSMICommandNotFound(t *testing.T) {
	_, err := nvml.NewSMI(nvml.Config{SMIPath: filepath.Join(t.TempDir(), "nvidia-smi")}).Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeCommandNotFound {
		t.Fatalf("missing binary: %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	_, err = nvml.NewSMI(nvml.Config{}).Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeCommandNotFound {
		t.Fatalf("not in PATH: %v", err)
	}
	if h := vram.HandlingFor(vram.KindOf(err)); h.Action != vram.ActionEnterCPUMode || h.Severity != vram.SeverityCritical {
		t.Fatalf("handling %+v", h)
	}
}

func TestSMIPermissionDenied(t *testing.T) {
	// Mode 0600: no execute bit at all, so even root gets EACCES.
	dir := t.TempDir()
	p := filepath.Join(dir, "nvidia-smi")
	if err := os.WriteFile(p, []byte("#!/bin/sh\necho '1, 2'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := nvml.NewSMI(nvml.Config{SMIPath: p}).Memory(context.Background())
	if vram.KindOf(err) != vram.ProbePermissionDenied {
		t.Fatalf("non-executable nvidia-smi: %v", err)
	}
}

// TIMEOUT → RETRY_WITH_BACKOFF: the run is killed at the timeout, and the
// next readings within the backoff do not run nvidia-smi again.
func TestSMITimeoutBacksOff(t *testing.T) {
	dir := fakeSMI(t, "exec sleep 10")
	s := smiAt(dir, nvml.Config{SMITimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := s.Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeTimeout {
		t.Fatalf("slow nvidia-smi: %v, want TIMEOUT", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("timeout took %v, want about 200 ms", d)
	}
	_, err = s.Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeTimeout || !strings.Contains(err.Error(), "backing off") {
		t.Fatalf("second reading: %v, want an immediate backoff TIMEOUT", err)
	}
	if n := calls(t, dir); n != 1 {
		t.Fatalf("nvidia-smi ran %d times, want 1 (backoff)", n)
	}
}

// Detect: NVML is unavailable here (no driver), so the fake nvidia-smi on
// PATH answers.
func TestDetectFallsBackToSMI(t *testing.T) {
	dir := fakeSMI(t, "echo '512, 4096'")
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	r, err := nvml.Detect(nvml.Config{}).Memory(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if r.Source == "nvml" {
		t.Skip("this machine has a real NVIDIA GPU; the fallback is not exercised")
	}
	if r.Source != "nvidia-smi" || r.Used != 512*vram.MiB {
		t.Fatalf("reading %+v", r)
	}
}

func TestDetectNoGPU(t *testing.T) {
	if nvml.Available {
		if _, err := nvml.New(nvml.Config{}).Memory(context.Background()); err == nil {
			t.Skip("this machine has a real NVIDIA GPU")
		}
	}
	t.Setenv("PATH", t.TempDir())
	_, err := nvml.Detect(nvml.Config{}).Memory(context.Background())
	if vram.KindOf(err) != vram.ProbeCommandNotFound {
		t.Fatalf("no NVML, no nvidia-smi: %v, want COMMAND_NOT_FOUND", err)
	}
	if !strings.Contains(err.Error(), "nvml") || !strings.Contains(err.Error(), "nvidia-smi") {
		t.Fatalf("error %q should name both readers", err)
	}
}

func TestSMIConformance(t *testing.T) {
	vramtest.RunGPU(t, func(t *testing.T) vram.GPU { return smiAt(fakeSMI(t, "echo '1024, 8192'"), nvml.Config{}) })
}

func TestParseSMI(t *testing.T) {
	for _, c := range []struct {
		in          string
		index       int
		used, total uint64
		ok          bool
	}{
		{"1536, 8192\n", 0, 1536, 8192, true},
		{"  0 ,1\r\n", 0, 0, 1, true},
		{"1, 2\n3, 4\n", 1, 3, 4, true},
		{"\n\n7, 9\n\n", 0, 7, 9, true},
		{"", 0, 0, 0, false},
		{"[N/A], [N/A]", 0, 0, 0, false},
		{"5, 4", 0, 0, 0, false},    // used > total
		{"1, 0", 0, 0, 0, false},    // no memory
		{"1, 2, 3", 0, 0, 0, false}, // three fields
		{"-1, 2", 0, 0, 0, false},   // negative
		{"1 MiB, 2 MiB", 0, 0, 0, false},
		{"1, 2", 1, 0, 0, false}, // no GPU 1
		{"1, 99999999999999999", 0, 0, 0, false},
	} {
		used, total, err := nvml.ParseSMI(c.in, c.index)
		if (err == nil) != c.ok || c.ok && (used != c.used*vram.MiB || total != c.total*vram.MiB) {
			t.Errorf("ParseSMI(%q, %d) = %d, %d, %v; want %d MiB, %d MiB, ok=%v", c.in, c.index, used, total, err, c.used, c.total, c.ok)
		}
	}
}

func FuzzParseSMI(f *testing.F) {
	for _, s := range []string{"1536, 8192\n", "1, 2\n3, 4\n", "[N/A], [N/A]", "", "5,4", " 0 , 1 \r\n", "18446744073709551615, 18446744073709551615"} {
		f.Add(s, 0)
	}
	f.Add("1, 2\n3, 4\n", 1)
	f.Fuzz(func(t *testing.T, out string, index int) {
		used, total, err := nvml.ParseSMI(out, index)
		if err != nil {
			return
		}
		if total == 0 || used > total || used%vram.MiB != 0 || total%vram.MiB != 0 {
			t.Fatalf("ParseSMI(%q, %d) accepted used=%d total=%d", out, index, used, total)
		}
	})
}

func FuzzClassifySMIOutput(f *testing.F) {
	f.Add("No devices were found")
	f.Add("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")
	f.Fuzz(func(t *testing.T, out string) {
		k := nvml.ClassifySMIOutput(out)
		if vram.HandlingFor(k).Action == "" {
			t.Fatalf("kind %v has no action", k)
		}
	})
}
