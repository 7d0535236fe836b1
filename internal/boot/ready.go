package boot

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/talos-ironclad/talos/atomicfile"
)

// ReadyFileName is the marker's file name (the original specification's
// `/talos/.ready`).
const ReadyFileName = ".ready"

// ReadyFileMode is the marker's mode. The original specification says 0644;
// we write 0600 because the file names the health address and the process,
// and files the daemon writes are private unless they must be shared.
const ReadyFileMode fs.FileMode = 0o600

// Marker status values.
const (
	StatusReady    = "ready"
	StatusDegraded = "degraded"
	StatusFailed   = "failed"
)

// ReadyStep is one step's line in the marker.
type ReadyStep struct {
	Name       string  `json:"name"`
	Outcome    Outcome `json:"outcome"`
	DurationMS float64 `json:"duration_ms"`
	Detail     string  `json:"detail,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// Ready is the content of the ready marker: written when the daemon is
// ready (status "ready" or "degraded"), or when boot failed (status
// "failed" with the failed step), as in the original specification but with
// the real subsystem outcomes instead of its hard-coded ones.
type Ready struct {
	Status         string      `json:"status"`
	PID            int         `json:"pid"`
	Version        string      `json:"version"`
	InstanceID     string      `json:"instance_id,omitempty"` // TALOS_INSTANCE_ID; empty when unset
	StartedAt      time.Time   `json:"started_at"`
	ReadyAt        time.Time   `json:"ready_at"`
	BootDurationMS float64     `json:"boot_duration_ms"`
	HealthAddr     string      `json:"health_addr,omitempty"`
	HealthURL      string      `json:"health_url,omitempty"`
	FailedStep     string      `json:"failed_step,omitempty"`
	ExitCode       int         `json:"exit_code,omitempty"`
	Steps          []ReadyStep `json:"steps"`
}

// NewReady fills a marker from a boot report. The status is "failed" when a
// step failed, "degraded" when one was degraded, "ready" otherwise.
func NewReady(rep Report, version, healthAddr string) Ready {
	r := Ready{
		Status:         StatusReady,
		PID:            os.Getpid(),
		Version:        version,
		StartedAt:      rep.Started.UTC(),
		ReadyAt:        time.Now().UTC(),
		BootDurationMS: ms(rep.Duration),
		HealthAddr:     healthAddr,
		FailedStep:     rep.FailedStep,
		Steps:          make([]ReadyStep, 0, len(rep.Steps)),
	}
	if healthAddr != "" {
		r.HealthURL = "http://" + healthAddr + "/health"
	}
	switch {
	case rep.FailedStep != "":
		r.Status, r.ExitCode = StatusFailed, 1
	case rep.Degraded:
		r.Status = StatusDegraded
	}
	for _, s := range rep.Steps {
		r.Steps = append(r.Steps, ReadyStep{Name: s.Name, Outcome: s.Outcome, DurationMS: ms(s.Duration), Detail: s.Detail, Error: s.Error})
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// WriteReady writes the marker to path atomically: a temporary file in the
// same directory, written, synced and renamed over path, so a reader sees
// either no marker or a whole one. The file is ReadyFileMode.
func WriteReady(path string, r Ready) error {
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ready marker: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.WriteFile(path, data, ReadyFileMode); err != nil {
		return fmt.Errorf("write ready marker: %w", err)
	}
	return nil
}

// ReadReady reads the marker at path.
func ReadReady(path string) (Ready, error) {
	var r Ready
	data, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return r, fmt.Errorf("ready marker %s is not valid JSON: %w (delete it; the daemon rewrites it on its next start)", path, err)
	}
	return r, nil
}

// RemoveReady deletes the marker; a missing marker is not an error.
func RemoveReady(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove ready marker %s: %w", path, err)
	}
	return nil
}
