package quarantinetest_test

import (
	"context"
	"fmt"

	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
)

func ExampleStore() {
	ctx := context.Background()
	s := quarantinetest.NewStore()
	rec := quarantinetest.SampleRecord("hello_world", "1.0.0", 1)
	s.Create(ctx, rec, quarantine.AuditEntry{Actor: "user:alice", Event: "added", To: rec.State})
	s.Update(ctx, rec.Key, func(r *quarantine.Record) (quarantine.AuditEntry, error) {
		r.State = quarantine.StateExecuting
		return quarantine.AuditEntry{Actor: "sandbox", Event: "start_run", From: quarantine.StatePending, To: r.State}, nil
	})
	es, _ := s.Audit(ctx, rec.Key)
	for _, e := range es {
		fmt.Println(e.Seq, e.Actor, e.Event, e.To)
	}
	head, err := s.Verify(ctx)
	fmt.Println(head.Entries, err)
	// Output:
	// 1 user:alice added pending
	// 2 sandbox start_run executing
	// 2 <nil>
}
