package daemon

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseMemAvailable(t *testing.T) {
	in := "MemTotal:       24683856 kB\nMemFree:        23301760 kB\nMemAvailable:   24238124 kB\n"
	n, err := ParseMemAvailable([]byte(in))
	if err != nil || n != 24238124*1024 {
		t.Fatalf("%d %v", n, err)
	}
	for _, bad := range []string{"MemTotal: 1 kB\n", "MemAvailable:\n", "MemAvailable: x kB\n", "MemAvailable: 1 GB\n",
		"MemAvailable: 18446744073709551615 kB\n"} {
		if _, err := ParseMemAvailable([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestMemoryCheckWarnsAtOneGiB(t *testing.T) {
	p := filepath.Join(t.TempDir(), "meminfo")
	for kb, warn := range map[int]bool{1048576: true, 1048577: false, 10: true} {
		if err := os.WriteFile(p, []byte("MemAvailable: "+strconv.Itoa(kb)+" kB\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := memoryCheck(p)
		if (err != nil) != warn {
			t.Errorf("%d kB: err %v, want warn=%v", kb, err, warn)
		}
	}
	if _, err := memoryCheck(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("missing meminfo passed")
	}
}

func TestDiskCheckReads(t *testing.T) {
	d, err := diskCheck(t.TempDir())
	if err != nil && !strings.Contains(err.Error(), "disk") {
		t.Fatal(err)
	}
	if !strings.Contains(d, "% used") {
		t.Fatalf("detail %q", d)
	}
}

func TestDockerHostOf(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:2375":   "tcp://127.0.0.1:2375",
		"https://h:2376":          "tcp://h:2376",
		"unix:///run/docker.sock": "unix:///run/docker.sock",
	} {
		if got := dockerHostOf(in); got != want {
			t.Errorf("dockerHostOf(%q) = %q", in, got)
		}
	}
}

func FuzzParseMemAvailable(f *testing.F) {
	f.Add([]byte("MemAvailable:   24238124 kB\n"))
	f.Add([]byte("MemAvailable: 1\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := ParseMemAvailable(data)
		if err == nil && !strings.Contains(string(data), "MemAvailable:") {
			t.Fatalf("parsed %d from input without MemAvailable", n)
		}
	})
}
