package vram

import (
	"fmt"
	"strings"
	"time"
)

// WaitBuckets are the upper bounds, in seconds, of the wait-time histogram.
var waitBuckets = [...]float64{0.001, 0.01, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120}

// WaitBuckets returns the upper bounds, in seconds, of the wait-time
// histogram buckets (the last, implicit bucket is +Inf).
func WaitBuckets() []float64 { return append([]float64(nil), waitBuckets[:]...) }

// Histogram is a cumulative-free histogram of Acquire wait times: Counts[i]
// counts waits ≤ WaitBuckets()[i] and > the previous bound; the last element
// counts the rest.
type Histogram struct {
	Counts []uint64 `json:"counts"`
	Count  uint64   `json:"count"`
	Sum    float64  `json:"sum_seconds"`
}

type histogram struct {
	counts [len(waitBuckets) + 1]uint64
	count  uint64
	sum    float64
}

func (h *histogram) observe(d time.Duration) {
	s := d.Seconds()
	i := 0
	for i < len(waitBuckets) && s > waitBuckets[i] {
		i++
	}
	h.counts[i]++
	h.count++
	h.sum += s
}

func (h *histogram) snapshot() Histogram {
	return Histogram{Counts: append([]uint64(nil), h.counts[:]...), Count: h.count, Sum: h.sum}
}

// Stats is a snapshot of the mutex.
type Stats struct {
	State         State     `json:"state"`
	Model         string    `json:"model,omitempty"` // loading, resident or unloading model
	Leases        int       `json:"leases"`
	Waiters       int       `json:"waiters"`
	CooldownUntil time.Time `json:"cooldown_until,omitzero"`
	Error         string    `json:"error,omitempty"` // why the state is Error

	Grants       uint64                `json:"grants"`        // leases granted
	Timeouts     uint64                `json:"timeouts"`      // T100 returned
	Refusals     map[string]uint64     `json:"refusals"`      // by reason: unknown_model, vram, gpu_unreadable, load_failed, unload_hang, error_state
	Loads        uint64                `json:"loads"`         // successful loads
	LoadFailures uint64                `json:"load_failures"` // failed or timed-out loads
	Unloads      uint64                `json:"unloads"`       // completed unloads (incl. kills)
	Kills        map[KillMethod]uint64 `json:"kills"`         // ladder runs by outcome

	Transitions map[Transition]uint64 `json:"transitions"`
	Wait        Histogram             `json:"wait"`
	LastKill    *KillReport           `json:"last_kill,omitempty"`
	LastReading *Reading              `json:"last_reading,omitempty"`
}

// MarshalText encodes the state as its name, for JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText decodes a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("vram: unknown state %q (want one of %s)", b, strings.Join(stateNames[:], ", "))
}

// MarshalText encodes the transition as "from->to".
func (t Transition) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText decodes "from->to".
func (t *Transition) UnmarshalText(b []byte) error {
	from, to, ok := strings.Cut(string(b), "->")
	if !ok {
		return fmt.Errorf("vram: transition %q is not \"from->to\"", b)
	}
	if err := t.From.UnmarshalText([]byte(from)); err != nil {
		return err
	}
	return t.To.UnmarshalText([]byte(to))
}
