package vram

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestParseProcStat(t *testing.T) {
	line := "1234 (ollama runner) S 987 1234 1234 0 -1 4194560 2 0 0 0 1 2 0 0 20 0 12 0 56789 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0"
	p, err := ParseProcStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != 1234 || p.Comm != "ollama runner" || p.State != 'S' || p.PPID != 987 || p.StartTime != 56789 || p.ProcState() != ProcRunning {
		t.Fatalf("parsed %+v", p)
	}
	// A command name with ") Z (" must not fool the parser.
	tricky := "42 (a) Z (b) R 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0"
	p, err = ParseProcStat(tricky)
	if err != nil {
		t.Fatal(err)
	}
	if p.Comm != "a) Z (b" || p.State != 'R' || p.StartTime != 777 {
		t.Fatalf("tricky comm parsed as %+v", p)
	}
	for _, z := range []struct {
		state byte
		want  ProcState
	}{{'Z', ProcZombie}, {'X', ProcGone}, {'D', ProcRunning}, {'T', ProcRunning}} {
		if got := (ProcInfo{State: z.state}).ProcState(); got != z.want {
			t.Errorf("state %c → %v, want %v", z.state, got, z.want)
		}
	}
	for _, bad := range []string{"", "1 S 2", "x (a) S 1 2", "1 (a) S", "1 (a) SS 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "1 (a) S -4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1", "0 (a) S 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 x"} {
		if _, err := ParseProcStat(bad); err == nil {
			t.Errorf("ParseProcStat(%q) = nil error", bad)
		}
	}
}

func TestParseOwnProcStat(t *testing.T) {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Skip("no /proc on this system")
	}
	p, err := ParseProcStat(string(data))
	if err != nil {
		t.Fatal(err)
	}
	if p.PID != os.Getpid() || p.PPID != os.Getppid() || p.ProcState() != ProcRunning || p.StartTime == 0 {
		t.Fatalf("own stat parsed as %+v (pid %d)", p, os.Getpid())
	}
	info, err := OSProcesses().Inspect(os.Getpid())
	if err != nil || info.PID != os.Getpid() {
		t.Fatalf("Inspect(self) = %+v, %v", info, err)
	}
	gone, err := OSProcesses().Inspect(1 << 30)
	if err != nil || gone.ProcState() != ProcGone {
		t.Fatalf("Inspect(no such pid) = %+v, %v", gone, err)
	}
	if ok, err := OSProcesses().Reap(os.Getpid()); ok || err != nil {
		t.Fatalf("Reap(self) = %v, %v; we are not our own child", ok, err)
	}
}

func FuzzParseProcStat(f *testing.F) {
	f.Add("1234 (ollama runner) S 987 1234 1234 0 -1 4194560 2 0 0 0 1 2 0 0 20 0 12 0 56789 1000")
	f.Add("42 (a) Z (b) R 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0")
	f.Add("7 () Z 1 " + strings.Repeat("0 ", 30))
	f.Add("(((")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseProcStat(s)
		if err != nil {
			return
		}
		if p.PID <= 0 || p.PPID < 0 {
			t.Fatalf("accepted pid %d ppid %d from %q", p.PID, p.PPID, s)
		}
		if !strings.HasPrefix(strings.TrimSpace(s), strconv.Itoa(p.PID)) && !strings.HasPrefix(strings.TrimSpace(s), "+") && !strings.HasPrefix(strings.TrimSpace(s), "0") {
			t.Fatalf("pid %d does not come from the start of %q", p.PID, s)
		}
		_ = p.ProcState()
	})
}
