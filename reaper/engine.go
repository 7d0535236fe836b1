package reaper

import (
	"context"
	"errors"
	"time"
)

// Labels Talos puts on the containers it manages. LabelManaged and
// LabelManagedValue equal the socket proxy's
// (sockproxy.LabelManaged), which injects the same label on every create
// and lets per-container calls through only for labelled containers.
const (
	LabelManaged      = "talos.managed"
	LabelManagedValue = "true"
	LabelSession      = "talos.session_id"
	LabelCreatedAt    = "talos.created_at" // RFC 3339, UTC
)

// ErrContainerNotFound is wrapped by Engine errors for a container that does
// not exist.
var ErrContainerNotFound = errors.New("reaper: container not found")

// ContainerSpec is what the respawn manager asks the engine to create.
type ContainerSpec struct {
	Name           string
	Image          string
	Cmd            []string
	Env            []string
	User           string
	Labels         map[string]string
	MemoryBytes    int64             // HostConfig.Memory
	MemorySwap     int64             // HostConfig.MemorySwap (== MemoryBytes: no swap)
	NanoCPUs       int64             // HostConfig.NanoCPUs (1e9 = one CPU)
	PidsLimit      int64             // HostConfig.PidsLimit
	CapDrop        []string          // HostConfig.CapDrop
	CapAdd         []string          // HostConfig.CapAdd
	ReadonlyRootfs bool              // HostConfig.ReadonlyRootfs
	Tmpfs          map[string]string // HostConfig.Tmpfs: mount point → options
	NetworkMode    string            // HostConfig.NetworkMode
	SecurityOpt    []string          // HostConfig.SecurityOpt
}

// Container is what the engine reports about one container.
type Container struct {
	ID      string
	Name    string // without the leading "/"
	Image   string
	Labels  map[string]string
	Created time.Time
	State   string // created, running, exited, …
}

// Engine is the part of the Docker API the respawn manager and the zombie
// hunt use. reaper/docker implements it with the moby client (pointed at the
// socket proxy in the daemon); reapertest has a fake.
type Engine interface {
	// Create creates (does not start) a container and returns its ID.
	Create(ctx context.Context, spec ContainerSpec) (string, error)
	// Start starts a created container.
	Start(ctx context.Context, id string) error
	// Stop stops a container, killing it after timeout.
	Stop(ctx context.Context, id string, timeout time.Duration) error
	// Remove removes a container, killing it first if it still runs.
	Remove(ctx context.Context, id string) error
	// List returns every container (in any state) carrying label=value.
	List(ctx context.Context, label, value string) ([]Container, error)
}
