package reapertest_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/reaper"
	"github.com/talos-ironclad/talos/reaper/reapertest"
)

func ExampleEngine() {
	ctx := context.Background()
	e := reapertest.NewEngine()
	id, err := e.Create(ctx, reaper.ContainerSpec{Name: "skill-1", Image: "busybox", Labels: map[string]string{"talos": "1"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := e.Start(ctx, id); err != nil {
		fmt.Println(err)
		return
	}
	cs, _ := e.List(ctx, "talos", "1")
	for _, c := range cs {
		fmt.Println(c.Name, c.State)
	}
	// Output:
	// skill-1 running
}
