package vram

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/talos-ironclad/talos"
)

// Reading is one measurement of a GPU's memory.
type Reading struct {
	Used   uint64    `json:"used_bytes"`  // bytes in use
	Total  uint64    `json:"total_bytes"` // bytes on the device
	Source string    `json:"source"`      // "nvml", "nvidia-smi", "fake", ...
	At     time.Time `json:"at"`          // when it was measured
	// Stale is true when the reader could not measure and returned the last
	// known reading instead (the spec's USE_LAST_KNOWN action).
	Stale bool `json:"stale,omitempty"`
}

// Free returns Total - Used, or 0 when Used exceeds Total.
func (r Reading) Free() uint64 {
	if r.Used >= r.Total {
		return 0
	}
	return r.Total - r.Used
}

// GPU reads the memory of the GPU the models run on.
//
// On failure Memory returns a *ProbeError (possibly wrapped) that classifies
// the failure with the spec's error → action table; the returned Reading is
// then the last known one with Stale set, or the zero Reading if there is none.
type GPU interface {
	Memory(ctx context.Context) (Reading, error)
}

// ProbeKind classifies a failed GPU reading.
type ProbeKind string

// The spec's nvidia-smi failure kinds. NVML failures map onto the same kinds.
const (
	ProbeCommandNotFound  ProbeKind = "COMMAND_NOT_FOUND"
	ProbeDriverError      ProbeKind = "DRIVER_ERROR"
	ProbeGPUNotFound      ProbeKind = "GPU_NOT_FOUND"
	ProbeTimeout          ProbeKind = "TIMEOUT"
	ProbeParseError       ProbeKind = "PARSE_ERROR"
	ProbePermissionDenied ProbeKind = "PERMISSION_DENIED"
	ProbeUnknown          ProbeKind = "UNKNOWN"
)

// ProbeAction is what the system does about a failed reading.
type ProbeAction string

// Actions of the error → action table. ESCALATE_PRIVILEGES from the spec is
// replaced by FIX_CONFIG: an agent must not raise its own privileges.
const (
	ActionEnterCPUMode     ProbeAction = "ENTER_CPU_MODE"
	ActionRestartRequired  ProbeAction = "RESTART_REQUIRED"
	ActionRetryWithBackoff ProbeAction = "RETRY_WITH_BACKOFF"
	ActionUseLastKnown     ProbeAction = "USE_LAST_KNOWN"
	ActionFixConfig        ProbeAction = "FIX_CONFIG"
	ActionLogAndContinue   ProbeAction = "LOG_AND_CONTINUE"
)

// ProbeSeverity is the spec's severity of a failed reading.
type ProbeSeverity string

// Severities of the error → action table.
const (
	SeverityCritical ProbeSeverity = "CRITICAL"
	SeverityHigh     ProbeSeverity = "HIGH"
	SeverityMedium   ProbeSeverity = "MEDIUM"
	SeverityUnknown  ProbeSeverity = "UNKNOWN"
)

// ProbeHandling is one row of the error → action table.
type ProbeHandling struct {
	Severity ProbeSeverity
	Action   ProbeAction
	Message  string
}

// HandlingFor returns the row of the error → action table for kind.
// Unknown kinds get UNKNOWN / LOG_AND_CONTINUE.
func HandlingFor(kind ProbeKind) ProbeHandling {
	switch kind {
	case ProbeCommandNotFound:
		return ProbeHandling{SeverityCritical, ActionEnterCPUMode, "GPU monitoring unavailable - falling back to CPU"}
	case ProbeDriverError:
		return ProbeHandling{SeverityCritical, ActionRestartRequired, "NVIDIA driver error - system restart required"}
	case ProbeGPUNotFound:
		return ProbeHandling{SeverityCritical, ActionEnterCPUMode, "No GPU detected - falling back to CPU"}
	case ProbeTimeout:
		return ProbeHandling{SeverityHigh, ActionRetryWithBackoff, "nvidia-smi timeout - will retry with backoff"}
	case ProbeParseError:
		return ProbeHandling{SeverityMedium, ActionUseLastKnown, "Parse error - using last known GPU state"}
	case ProbePermissionDenied:
		return ProbeHandling{SeverityCritical, ActionFixConfig, "Permission denied - grant the daemon's user access to the GPU device (it will not escalate its own privileges)"}
	}
	return ProbeHandling{SeverityUnknown, ActionLogAndContinue, "Unknown GPU monitoring error - logged, continuing"}
}

// ProbeError is a failed GPU reading. It carries code T110 (GPU_QUERY_FAILED)
// so errors.Is(err, talos.ErrGPUQuery) holds.
type ProbeError struct {
	Kind   ProbeKind
	Source string // which reader failed
	Detail string // what the reader saw (stderr line, NVML return, ...)
	Err    error  // cause, may be nil
}

// Error formats as "T110 GPU_QUERY_FAILED: nvidia-smi: TIMEOUT: detail: action".
func (e *ProbeError) Error() string {
	var b strings.Builder
	b.WriteString(string(talos.CodeGPUQuery))
	b.WriteString(" GPU_QUERY_FAILED: ")
	if e.Source != "" {
		b.WriteString(e.Source)
		b.WriteString(": ")
	}
	b.WriteString(string(e.Kind))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	if e.Err != nil && !strings.Contains(e.Detail, e.Err.Error()) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	b.WriteString(" (")
	b.WriteString(HandlingFor(e.Kind).Message)
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the cause.
func (e *ProbeError) Unwrap() error { return e.Err }

// Is matches talos.ErrGPUQuery (code T110).
func (e *ProbeError) Is(target error) bool {
	if c, ok := target.(talos.Code); ok {
		return c == talos.CodeGPUQuery
	}
	if te, ok := target.(*talos.Error); ok {
		return te.Code == talos.CodeGPUQuery
	}
	return false
}

// Handling returns the error → action row of the error's kind.
func (e *ProbeError) Handling() ProbeHandling { return HandlingFor(e.Kind) }

// KindOf returns the ProbeKind of the first *ProbeError in err's chain, or
// ProbeUnknown.
func KindOf(err error) ProbeKind {
	var pe *ProbeError
	if errors.As(err, &pe) {
		return pe.Kind
	}
	return ProbeUnknown
}

// Fallback returns a GPU that asks each reader in order and returns the first
// reading that succeeds, for example NVML first and nvidia-smi second.
// When every reader fails, it returns the last known
// reading (Stale) with the error of the last reader, joined with the others'.
func Fallback(readers ...GPU) GPU {
	return &fallback{readers: readers}
}

type fallback struct {
	readers []GPU
	mu      sync.Mutex
	last    Reading
	hasLast bool
}

func (f *fallback) Memory(ctx context.Context) (Reading, error) {
	if len(f.readers) == 0 {
		return Reading{}, &ProbeError{Kind: ProbeGPUNotFound, Source: "fallback", Detail: "no GPU reader configured"}
	}
	var errs []error
	for _, r := range f.readers {
		rd, err := r.Memory(ctx)
		if err == nil {
			f.mu.Lock()
			f.last, f.hasLast = rd, true
			f.mu.Unlock()
			return rd, nil
		}
		errs = append(errs, err)
	}
	last := errs[len(errs)-1]
	out := last
	if len(errs) > 1 {
		out = &chainError{last: last, all: errs}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.hasLast {
		stale := f.last
		stale.Stale = true
		return stale, out
	}
	return Reading{}, out
}

// chainError reports the last reader's error first and keeps every error in
// the chain for errors.Is/As.
type chainError struct {
	last error
	all  []error
}

func (c *chainError) Error() string {
	parts := make([]string, len(c.all))
	for i, e := range c.all {
		parts[i] = e.Error()
	}
	return fmt.Sprintf("every GPU reader failed: %s", strings.Join(parts, "; "))
}

func (c *chainError) Unwrap() []error {
	out := make([]error, 0, len(c.all))
	out = append(out, c.last)
	for _, e := range c.all {
		if e != c.last {
			out = append(out, e)
		}
	}
	return out
}
