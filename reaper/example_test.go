package reaper_test

import (
	"context"
	"fmt"
	"time"

	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/reaper/reapertest"
)

func Example() {
	r, err := reaper.New(reaper.Config{}, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer r.Close()

	c := r.Command("sh", "-c", "exit 3")
	err = c.Run()
	if ee, ok := err.(*reaper.ExitError); ok {
		fmt.Println("exit code:", ee.ExitCode())
	}
	// Output: exit code: 3
}

func ExampleManager_Respawn() {
	m, err := reaper.NewManager(reaper.RespawnConfig{Image: "talos/browser-automation:v4.0"}, reapertest.NewEngine())
	if err != nil {
		fmt.Println(err)
		return
	}
	var ladder []time.Duration
	for n := range reaper.DefaultMaxRespawns {
		ladder = append(ladder, m.Backoff(n))
	}
	fmt.Println(ladder)
	spec := m.Spec("s1")
	fmt.Println(spec.Name, spec.MemoryBytes>>20, "MiB, swap", spec.MemorySwap-spec.MemoryBytes, "pids", spec.PidsLimit, "readonly", spec.ReadonlyRootfs)
	// Output:
	// [5s 10s 20s 40s 1m20s]
	// talos-browser-s1 512 MiB, swap 0 pids 100 readonly true
}

func ExampleHunter_Hunt() {
	eng := reapertest.NewEngine()
	eng.Add(reaper.Container{Name: "talos-browser-old", Labels: map[string]string{reaper.LabelManaged: "true"}, Created: time.Now().Add(-96 * time.Hour)})
	eng.Add(reaper.Container{Name: "talos-browser-new", Labels: map[string]string{reaper.LabelManaged: "true"}, Created: time.Now()})
	eng.Add(reaper.Container{Name: "someone-elses", Created: time.Now().Add(-96 * time.Hour)})

	h, err := reaper.NewHunter(reaper.HuntConfig{}, eng, nil, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, err := h.Hunt(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range rep.Removed {
		fmt.Println("removed", e.Name)
	}
	for _, e := range rep.Skipped {
		fmt.Println("skipped", e.Name+":", e.Reason)
	}
	fmt.Println(len(eng.Containers()), "containers left")
	// Output:
	// removed talos-browser-old
	// skipped talos-browser-new: younger than the maximum age
	// 2 containers left
}
