package quarantinetest_test

import (
	"context"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
)

func TestStoreConformance(t *testing.T) {
	quarantinetest.RunStore(t, func(t *testing.T) quarantine.Store { return quarantinetest.NewStore() })
}

func TestStoreVerifyNamesTheEditedEntry(t *testing.T) {
	ctx := context.Background()
	s := quarantinetest.NewStore()
	for i, id := range []string{"one", "two", "three"} {
		r := quarantinetest.SampleRecord(id, "1.0.0", i)
		if err := s.Create(ctx, r, quarantine.AuditEntry{Actor: "system", Event: "added"}); err != nil {
			t.Fatal(err)
		}
	}
	s.Tamper(2, func(e *quarantine.AuditEntry) { e.Actor = "mallory" })
	if _, err := s.Verify(ctx); err == nil || !strings.Contains(err.Error(), "entry 2") {
		t.Fatalf("Verify = %v, want entry 2 named", err)
	}
}

func TestInbox(t *testing.T) {
	ctx := context.Background()
	in := &quarantinetest.Inbox{}
	a := quarantine.Key{ID: "a", Version: "1.0.0", Hash: "h"}
	b := quarantine.Key{ID: "b", Version: "1.0.0", Hash: "h"}
	in.Notify(ctx, quarantine.Notice{Key: a, Code: "111111"})
	in.Notify(ctx, quarantine.Notice{Key: b, Code: "222222"})
	in.Notify(ctx, quarantine.Notice{Key: a, Code: "333333"})
	if c, ok := in.Code(a); !ok || c != "333333" {
		t.Fatalf("Code(a) = %q, %v", c, ok)
	}
	if _, ok := in.Code(quarantine.Key{ID: "z"}); ok {
		t.Fatal("code for an unknown key")
	}
	if len(in.Notices()) != 3 {
		t.Fatalf("%d notices", len(in.Notices()))
	}
	in.Fail = context.DeadlineExceeded
	if err := in.Notify(ctx, quarantine.Notice{Key: a}); err == nil || len(in.Notices()) != 3 {
		t.Fatal("Fail did not fail")
	}
}
