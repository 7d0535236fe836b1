package nvml

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/talos-ironclad/talos/vram"
)

// Defaults of the nvidia-smi reader.
const (
	// DefaultSMIPath is the command looked up in PATH.
	DefaultSMIPath = "nvidia-smi"
	// DefaultSMITimeout bounds one nvidia-smi run (NVIDIA_SMI_TIMEOUT).
	DefaultSMITimeout = 5 * time.Second
	// DefaultBackoffMin and DefaultBackoffMax bound the pause after a timeout
	// (RETRY_WITH_BACKOFF).
	DefaultBackoffMin = time.Second
	DefaultBackoffMax = 60 * time.Second
)

// SMIArgs are the arguments nvidia-smi is run with.
var smiArgs = []string{"--query-gpu=memory.used,memory.total", "--format=csv,noheader,nounits"}

// SMIArgs returns the arguments nvidia-smi is run with.
func SMIArgs() []string { return append([]string(nil), smiArgs...) }

// SMI reads GPU memory by running nvidia-smi.
type SMI struct {
	path    string
	timeout time.Duration
	index   int
	run     func(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error

	mu           sync.Mutex
	last         vram.Reading
	hasLast      bool
	backoff      time.Duration
	backoffUntil time.Time
}

// NewSMI returns an nvidia-smi reader of GPU cfg.Index.
func NewSMI(cfg Config) *SMI {
	cfg = cfg.withDefaults()
	return &SMI{path: cfg.SMIPath, timeout: cfg.SMITimeout, index: cfg.Index, run: cfg.Run}
}

// Memory implements vram.GPU.
func (s *SMI) Memory(ctx context.Context) (vram.Reading, error) {
	s.mu.Lock()
	if now := time.Now(); now.Before(s.backoffUntil) {
		err := &vram.ProbeError{Kind: vram.ProbeTimeout, Source: "nvidia-smi",
			Detail: fmt.Sprintf("backing off after a timeout; next try in %v", s.backoffUntil.Sub(now).Round(time.Millisecond))}
		r := s.staleLocked()
		s.mu.Unlock()
		return r, err
	}
	s.mu.Unlock()

	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var stdout, stderr bytes.Buffer
	runErr := s.run(cctx, s.path, SMIArgs(), &stdout, &stderr)

	s.mu.Lock()
	defer s.mu.Unlock()
	if runErr != nil {
		kind := classifySMI(runErr, cctx.Err(), stdout.String()+"\n"+stderr.String())
		if kind == vram.ProbeTimeout && ctx.Err() == nil {
			s.backoff = min(max(2*s.backoff, DefaultBackoffMin), DefaultBackoffMax)
			s.backoffUntil = time.Now().Add(s.backoff)
		}
		return s.staleLocked(), &vram.ProbeError{Kind: kind, Source: "nvidia-smi", Detail: firstLine(stderr.String(), stdout.String()), Err: runErr}
	}
	used, total, err := ParseSMI(stdout.String(), s.index)
	if err != nil {
		kind := vram.ProbeParseError
		if errors.Is(err, errNoSuchGPU) {
			kind = vram.ProbeGPUNotFound
		}
		return s.staleLocked(), &vram.ProbeError{Kind: kind, Source: "nvidia-smi", Err: err}
	}
	s.backoff, s.backoffUntil = 0, time.Time{}
	s.last = vram.Reading{Used: used, Total: total, Source: "nvidia-smi", At: time.Now()}
	s.hasLast = true
	return s.last, nil
}

// execRun is Config.Run's default: os/exec, killed when ctx ends.
func execRun(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = time.Second // do not wait for grandchildren holding the pipes
	cmd.Stdout, cmd.Stderr = stdout, stderr
	return cmd.Run()
}

func (s *SMI) staleLocked() vram.Reading {
	if !s.hasLast {
		return vram.Reading{}
	}
	r := s.last
	r.Stale = true
	return r
}

var errNoSuchGPU = errors.New("no such GPU")

// ParseSMI parses the output of nvidia-smi with SMIArgs: one line per GPU,
// "used, total" in MiB. It returns GPU index's values in bytes.
func ParseSMI(out string, index int) (used, total uint64, err error) {
	var lines []string
	for l := range strings.SplitSeq(out, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	if len(lines) == 0 {
		return 0, 0, errors.New("nvidia-smi printed nothing")
	}
	if index < 0 || index >= len(lines) {
		return 0, 0, fmt.Errorf("%w: GPU index %d, nvidia-smi listed %d GPUs", errNoSuchGPU, index, len(lines))
	}
	fields := strings.Split(lines[index], ",")
	if len(fields) != 2 {
		return 0, 0, fmt.Errorf("line %q has %d fields, want \"used, total\"", truncate(lines[index]), len(fields))
	}
	usedMiB, err := parseMiB(fields[0])
	if err != nil {
		return 0, 0, fmt.Errorf("memory.used: %w", err)
	}
	totalMiB, err := parseMiB(fields[1])
	if err != nil {
		return 0, 0, fmt.Errorf("memory.total: %w", err)
	}
	if totalMiB == 0 {
		return 0, 0, errors.New("memory.total is 0")
	}
	if usedMiB > totalMiB {
		return 0, 0, fmt.Errorf("memory.used %d MiB exceeds memory.total %d MiB", usedMiB, totalMiB)
	}
	return usedMiB * vram.MiB, totalMiB * vram.MiB, nil
}

// maxMiB keeps byte values far from overflow (1 EiB).
const maxMiB = 1 << 40

func parseMiB(s string) (uint64, error) {
	s = strings.TrimSpace(s)
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a whole number of MiB (nvidia-smi prints [N/A] when the GPU cannot report it)", truncate(s))
	}
	if v > maxMiB {
		return 0, fmt.Errorf("%d MiB is implausibly large", v)
	}
	return v, nil
}

// classifySMI maps a failed nvidia-smi run onto the spec's kinds.
func classifySMI(runErr, ctxErr error, output string) vram.ProbeKind {
	switch {
	case errors.Is(ctxErr, context.DeadlineExceeded):
		return vram.ProbeTimeout
	case errors.Is(runErr, exec.ErrNotFound), errors.Is(runErr, fs.ErrNotExist):
		return vram.ProbeCommandNotFound
	case errors.Is(runErr, fs.ErrPermission), errors.Is(runErr, syscall.EACCES):
		return vram.ProbePermissionDenied
	}
	return ClassifySMIOutput(output)
}

// ClassifySMIOutput maps what a failing nvidia-smi printed onto the spec's
// kinds. Unrecognised output is UNKNOWN.
func ClassifySMIOutput(output string) vram.ProbeKind {
	o := strings.ToLower(output)
	switch {
	case strings.Contains(o, "no devices were found"), strings.Contains(o, "no nvidia gpu"):
		return vram.ProbeGPUNotFound
	case strings.Contains(o, "insufficient permissions"), strings.Contains(o, "permission denied"):
		return vram.ProbePermissionDenied
	case strings.Contains(o, "couldn't communicate with the nvidia driver"),
		strings.Contains(o, "nvidia-smi has failed"),
		strings.Contains(o, "driver/library version mismatch"),
		strings.Contains(o, "gpu is lost"),
		strings.Contains(o, "unable to determine the device handle"),
		strings.Contains(o, "unknown error"):
		return vram.ProbeDriverError
	}
	return vram.ProbeUnknown
}

func firstLine(texts ...string) string {
	for _, t := range texts {
		for l := range strings.SplitSeq(t, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				return truncate(l)
			}
		}
	}
	return ""
}

func truncate(s string) string {
	const n = 160
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
