package dreamtest

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/talos-ironclad/talos/dream"
)

// Alerts records every alert it is given; safe for concurrent use. The
// zero value is ready.
type Alerts struct {
	mu   sync.Mutex
	list []dream.Alert
}

// Alert records a.
func (r *Alerts) Alert(_ context.Context, a dream.Alert) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.list = append(r.list, a)
	return nil
}

// All returns the alerts so far, oldest first.
func (r *Alerts) All() []dream.Alert {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.list)
}

// Of returns the alerts of kind k, oldest first.
func (r *Alerts) Of(k dream.AlertKind) []dream.Alert {
	var out []dream.Alert
	for _, a := range r.All() {
		if a.Kind == k {
			out = append(out, a)
		}
	}
	return out
}

// RunPhase runs p alone in a cycle whose state lives in dir (use a
// temporary directory) and returns its report. Calling it again on the same
// dir after the phase was interrupted (ctx cancelled during it) resumes it,
// so a phase's SaveProgress/LoadProgress can be tested.
func RunPhase(ctx context.Context, dir string, p dream.Phase) (dream.PhaseReport, error) {
	s, err := dream.New(dream.Config{StateDir: dir}, nil)
	if err != nil {
		return dream.PhaseReport{}, err
	}
	if err := s.Register(p); err != nil {
		return dream.PhaseReport{}, err
	}
	rep, err := s.Resume(ctx)
	if err == nil && rep == nil {
		rep, err = s.RunNow(ctx, "dreamtest")
	}
	if err != nil {
		return dream.PhaseReport{}, err
	}
	for _, r := range rep.Phases {
		if r.Name == p.Name {
			return r, nil
		}
	}
	return dream.PhaseReport{}, fmt.Errorf("dreamtest: the cycle did not report phase %s", p.Name)
}
