package host

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/reaper"
	reaperdocker "github.com/talos-ironclad/talos/reaper/docker"
)

// LabelInstance is the label on every container a home's skill sandboxes
// and browser sessions create (besides talos.managed=true); its value is InstanceID of the home, so a
// daemon finds its own containers among other homes' on one engine.
const LabelInstance = "talos.instance"

// ContainerStopGrace is how long a container gets to stop after SIGTERM
// at shutdown before the engine kills it.
const ContainerStopGrace = 2 * time.Second

// InstanceID names one Talos home on a Docker engine: the first 16 hex
// characters of the SHA-256 of the home's absolute, clean path. It is not
// TALOS_INSTANCE_ID: a home copied to a second path keeps that UUID in its
// talos.env, and two daemons on one engine must still find only their own
// containers.
func InstanceID(home string) string {
	if abs, err := filepath.Abs(home); err == nil {
		home = abs
	}
	sum := sha256.Sum256([]byte(filepath.Clean(home)))
	return hex.EncodeToString(sum[:8])
}

// sandboxLabels are the labels the host's sandboxes put on their
// containers.
func sandboxLabels(cfg *config.Config) map[string]string {
	return map[string]string{LabelInstance: InstanceID(cfg.Home)}
}

// ContainerSweep says what StopContainers did.
type ContainerSweep struct {
	// Engine is the Docker API the sweep used (the socket proxy when
	// configured), or "" when none is configured.
	Engine string
	// Removed are the names (else IDs) of the containers stopped and
	// removed; Failed says, per container, what went wrong.
	Removed []string
	Failed  map[string]string
}

// StopContainers stops (ContainerStopGrace, then killed) and removes, all
// at once, every container labelled talos.managed=true and LabelInstance
// of cfg's home, through the socket proxy when SOCKET_PROXY_URL is set, else
// on TALOS_DOCKER_HOST; with neither it does nothing. Containers without
// both labels are never touched. It returns when every container is done
// or ctx ends.
func StopContainers(ctx context.Context, cfg *config.Config) (ContainerSweep, error) {
	hostURL := cfg.SocketProxyURL
	if hostURL == "" {
		hostURL = cfg.DockerHost
	}
	sweep := ContainerSweep{Engine: hostURL, Failed: map[string]string{}}
	if hostURL == "" {
		return sweep, nil
	}
	eng, err := reaperdocker.New(reaperdocker.Config{Host: hostURL})
	if err != nil {
		return sweep, err
	}
	defer eng.Close()
	return sweepContainers(ctx, eng, InstanceID(cfg.Home), sweep)
}

// sweepContainers is StopContainers on eng for instance.
func sweepContainers(ctx context.Context, eng reaper.Engine, instance string, sweep ContainerSweep) (ContainerSweep, error) {
	list, err := eng.List(ctx, reaper.LabelManaged, reaper.LabelManagedValue)
	if err != nil {
		return sweep, err
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range list {
		if c.Labels[LabelInstance] != instance || c.Labels[reaper.LabelManaged] != reaper.LabelManagedValue {
			continue
		}
		name := c.Name
		if name == "" {
			name = c.ID
		}
		wg.Go(func() {
			err := eng.Stop(ctx, c.ID, ContainerStopGrace)
			if err == nil || errors.Is(err, reaper.ErrContainerNotFound) {
				err = eng.Remove(ctx, c.ID)
			}
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil || errors.Is(err, reaper.ErrContainerNotFound):
				sweep.Removed = append(sweep.Removed, name)
			default:
				sweep.Failed[name] = err.Error()
			}
		})
	}
	wg.Wait()
	sort.Strings(sweep.Removed)
	if len(sweep.Failed) > 0 {
		return sweep, fmt.Errorf("%d of this home's containers could not be stopped and removed", len(sweep.Failed))
	}
	return sweep, nil
}
