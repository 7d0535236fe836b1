package firewalltest_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/firewall/firewalltest"
)

// Test a lockdown flow without files or people: the Notifier fake hands the
// unlock code to the test.
func Example() {
	ctx := context.Background()
	n := &firewalltest.Notifier{}
	l, err := firewall.NewLockdown(ctx, firewall.LockdownConfig{Key: []byte("0123456789abcdef")}, &firewalltest.MemoryStore{}, n, nil)
	if err != nil {
		panic(err)
	}
	l.Trigger(ctx, "test", "PI-001")
	fmt.Println(l.Locked())
	r, _ := l.Unlock(ctx, n.LastCode(), "tester")
	fmt.Println(r, l.Locked())
	// Output:
	// true
	// unlocked false
}
