package docker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/reaper"
)

// DefaultHost is the engine address used when Config.Host is empty: the
// socket proxy's default unix socket is deployment-specific, so the default
// is Docker's own.
const DefaultHost = "unix:///var/run/docker.sock"

// Config configures an Engine.
type Config struct {
	// Host is the Docker API address ("unix:///path" or "tcp://host:port");
	// empty means DefaultHost.
	Host string
	// Client, if set, is used as is (Host is then ignored).
	Client *client.Client
}

// Engine is a reaper.Engine backed by a moby client.
type Engine struct {
	cli   *client.Client
	owned bool
}

var _ reaper.Engine = (*Engine)(nil)

// New returns an Engine for cfg.
func New(cfg Config) (*Engine, error) {
	if cfg.Client != nil {
		return &Engine{cli: cfg.Client}, nil
	}
	host := cfg.Host
	if host == "" {
		host = DefaultHost
	}
	if !strings.HasPrefix(host, "unix://") && !strings.HasPrefix(host, "tcp://") && !strings.HasPrefix(host, "http://") && !strings.HasPrefix(host, "https://") {
		return nil, talos.Errorf(talos.CodeConfigInvalid, "docker.New", "Docker host %q has an unknown scheme: use unix:///path/docker.sock or tcp://host:port", host)
	}
	cli, err := client.New(client.WithHost(host))
	if err != nil {
		return nil, talos.E(talos.CodeConfigInvalid, "docker.New", fmt.Sprintf("Docker host %q is not usable: use unix:///path/docker.sock or tcp://host:port", host), err)
	}
	return &Engine{cli: cli, owned: true}, nil
}

// Close closes the client if New created it.
func (e *Engine) Close() error {
	if e.owned {
		return e.cli.Close()
	}
	return nil
}

func wrap(op, what string, err error) error {
	if err == nil {
		return nil
	}
	if cerrdefs.IsNotFound(err) {
		return talos.E(talos.CodeDocker, op, what+" failed: no such container", fmt.Errorf("%w: %v", reaper.ErrContainerNotFound, err))
	}
	return talos.E(talos.CodeDocker, op, what+" failed", err)
}

// Create implements reaper.Engine.
func (e *Engine) Create(ctx context.Context, s reaper.ContainerSpec) (string, error) {
	pids := s.PidsLimit
	hc := &container.HostConfig{
		NetworkMode:    container.NetworkMode(s.NetworkMode),
		CapDrop:        slices.Clone(s.CapDrop),
		CapAdd:         slices.Clone(s.CapAdd),
		ReadonlyRootfs: s.ReadonlyRootfs,
		SecurityOpt:    slices.Clone(s.SecurityOpt),
		Tmpfs:          maps.Clone(s.Tmpfs),
		Resources: container.Resources{
			Memory:     s.MemoryBytes,
			MemorySwap: s.MemorySwap,
			NanoCPUs:   s.NanoCPUs,
			PidsLimit:  &pids,
		},
	}
	res, err := e.cli.ContainerCreate(ctx, client.ContainerCreateOptions{
		Name: s.Name,
		Config: &container.Config{
			Image:  s.Image,
			Cmd:    slices.Clone(s.Cmd),
			Env:    slices.Clone(s.Env),
			User:   s.User,
			Labels: maps.Clone(s.Labels),
		},
		HostConfig: hc,
	})
	if err != nil {
		return "", wrap("docker.Create", "creating container "+s.Name, err)
	}
	return res.ID, nil
}

// Start implements reaper.Engine.
func (e *Engine) Start(ctx context.Context, id string) error {
	_, err := e.cli.ContainerStart(ctx, id, client.ContainerStartOptions{})
	return wrap("docker.Start", "starting container "+id, err)
}

// Stop implements reaper.Engine.
func (e *Engine) Stop(ctx context.Context, id string, timeout time.Duration) error {
	secs := int((timeout + time.Second - 1) / time.Second)
	_, err := e.cli.ContainerStop(ctx, id, client.ContainerStopOptions{Timeout: &secs})
	return wrap("docker.Stop", "stopping container "+id, err)
}

// Remove implements reaper.Engine.
func (e *Engine) Remove(ctx context.Context, id string) error {
	_, err := e.cli.ContainerRemove(ctx, id, client.ContainerRemoveOptions{Force: true})
	return wrap("docker.Remove", "removing container "+id, err)
}

// List implements reaper.Engine.
func (e *Engine) List(ctx context.Context, label, value string) ([]reaper.Container, error) {
	res, err := e.cli.ContainerList(ctx, client.ContainerListOptions{
		All:     true,
		Filters: make(client.Filters).Add("label", label+"="+value),
	})
	if err != nil {
		return nil, wrap("docker.List", "listing containers with "+label+"="+value, err)
	}
	out := make([]reaper.Container, 0, len(res.Items))
	for _, c := range res.Items {
		// Trust but verify: a proxy or engine that ignored the filter must
		// not make us act on someone else's container.
		if c.Labels[label] != value {
			continue
		}
		name := ""
		if len(c.Names) > 0 {
			name = strings.TrimPrefix(c.Names[0], "/")
		}
		out = append(out, reaper.Container{
			ID:      c.ID,
			Name:    name,
			Image:   c.Image,
			Labels:  c.Labels,
			Created: time.Unix(c.Created, 0),
			State:   string(c.State),
		})
	}
	return out, nil
}
