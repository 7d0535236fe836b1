package strikestest_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

func ExampleMemoryStore() {
	st := strikestest.NewMemoryStore()
	tr, _ := strikes.New(strikes.Config{Key: make([]byte, 32)}, st, nil)
	skill := strikes.Skill{ID: "demo", Version: "0.1.0", Hash: strikestest.Hash('d')}
	tr.Record(context.Background(), skill, strikes.Failure{Type: strikes.Timeout, ExceptionType: "Timeout"})
	for _, e := range st.Events() {
		fmt.Println(e.Actor, e.Name, e.Data["number"])
	}
	// Output: strike_system strike_recorded 1
}
