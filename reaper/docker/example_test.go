package docker_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/reaper/docker"
)

// The respawn manager talks to the socket proxy's maintenance listener; no
// connection is made until the first call.
func ExampleNew() {
	eng, err := docker.New(docker.Config{Host: "unix:///run/talos/docker-maintenance.sock"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer eng.Close()
	m, err := reaper.NewManager(reaper.RespawnConfig{Image: "talos/browser-automation:v4.0"}, eng)
	fmt.Println(m != nil, err)
	// Output: true <nil>
}
