package reapertest

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/talos-ironclad/talos/reaper"
)

// Engine is an in-memory reaper.Engine. It is safe for concurrent use.
type Engine struct {
	mu         sync.Mutex
	next       int
	containers map[string]*entry
	calls      []string
	specs      []reaper.ContainerSpec

	// FailCreate, FailStart, FailStop and FailRemove, when set, make the
	// next calls of that kind fail with the returned error (nil = succeed).
	FailCreate, FailStart, FailStop, FailRemove func(id string) error
}

type entry struct {
	c    reaper.Container
	spec reaper.ContainerSpec
}

// NewEngine returns an empty fake engine.
func NewEngine() *Engine { return &Engine{containers: make(map[string]*entry)} }

// Add puts an existing container into the fake (for example an old one:
// set Created in the past). It returns the container's ID.
func (e *Engine) Add(c reaper.Container) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c.ID == "" {
		e.next++
		c.ID = fmt.Sprintf("%064x", e.next)
	}
	if c.State == "" {
		c.State = "running"
	}
	c.Labels = maps.Clone(c.Labels)
	e.containers[c.ID] = &entry{c: c}
	return c.ID
}

// Containers returns every container, labelled or not, by ID order.
func (e *Engine) Containers() []reaper.Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]reaper.Container, 0, len(e.containers))
	for _, x := range e.containers {
		out = append(out, x.c)
	}
	slices.SortFunc(out, func(a, b reaper.Container) int { return compare(a.ID, b.ID) })
	return out
}

// Calls returns the calls made so far, as "create NAME", "start ID", ….
func (e *Engine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// Specs returns every spec passed to Create.
func (e *Engine) Specs() []reaper.ContainerSpec {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.specs)
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (e *Engine) find(id string) (*entry, error) {
	if x, ok := e.containers[id]; ok {
		return x, nil
	}
	for _, x := range e.containers {
		if x.c.Name == id {
			return x, nil
		}
	}
	return nil, fmt.Errorf("reapertest: container %q: %w", id, reaper.ErrContainerNotFound)
}

// Create implements reaper.Engine.
func (e *Engine) Create(_ context.Context, s reaper.ContainerSpec) (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "create "+s.Name)
	if e.FailCreate != nil {
		if err := e.FailCreate(s.Name); err != nil {
			return "", err
		}
	}
	if s.Image == "" {
		return "", fmt.Errorf("reapertest: create %q: no image", s.Name)
	}
	for _, x := range e.containers {
		if s.Name != "" && x.c.Name == s.Name {
			return "", fmt.Errorf("reapertest: create: name %q already in use by %s", s.Name, x.c.ID[:12])
		}
	}
	e.next++
	id := fmt.Sprintf("%064x", e.next)
	e.specs = append(e.specs, s)
	e.containers[id] = &entry{spec: s, c: reaper.Container{ID: id, Name: s.Name, Image: s.Image, Labels: maps.Clone(s.Labels), Created: time.Now(), State: "created"}}
	return id, nil
}

// Start implements reaper.Engine.
func (e *Engine) Start(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "start "+id)
	if e.FailStart != nil {
		if err := e.FailStart(id); err != nil {
			return err
		}
	}
	x, err := e.find(id)
	if err != nil {
		return err
	}
	x.c.State = "running"
	return nil
}

// Stop implements reaper.Engine.
func (e *Engine) Stop(_ context.Context, id string, _ time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "stop "+id)
	if e.FailStop != nil {
		if err := e.FailStop(id); err != nil {
			return err
		}
	}
	x, err := e.find(id)
	if err != nil {
		return err
	}
	x.c.State = "exited"
	return nil
}

// Remove implements reaper.Engine.
func (e *Engine) Remove(_ context.Context, id string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "remove "+id)
	if e.FailRemove != nil {
		if err := e.FailRemove(id); err != nil {
			return err
		}
	}
	x, err := e.find(id)
	if err != nil {
		return err
	}
	delete(e.containers, x.c.ID)
	return nil
}

// List implements reaper.Engine.
func (e *Engine) List(_ context.Context, label, value string) ([]reaper.Container, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.calls = append(e.calls, "list "+label+"="+value)
	var out []reaper.Container
	for _, x := range e.containers {
		if v, ok := x.c.Labels[label]; ok && v == value {
			c := x.c
			c.Labels = maps.Clone(c.Labels)
			out = append(out, c)
		}
	}
	slices.SortFunc(out, func(a, b reaper.Container) int { return compare(a.ID, b.ID) })
	return out, nil
}
