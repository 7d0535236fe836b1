package breakertest_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/talos-ironclad/talos/breaker"
	"github.com/talos-ironclad/talos/breaker/breakertest"
)

// A breaker whose store is down keeps protecting the caller with its local
// state; Sync reports the store error.
func ExampleFailingStore() {
	store := &breakertest.FailingStore{Err: errors.New("redis: connection refused")}
	b, _ := breaker.New(breaker.Config{Name: "gemini", FailureThreshold: 2}, store)
	for i := 0; i < 2; i++ {
		t, _ := b.Allow()
		t.Done(errors.New("503"))
	}
	fmt.Println(b.State(), store.Calls.Load() > 0)
	fmt.Println(b.Sync(context.Background()) != nil)
	// Output:
	// open true
	// true
}
