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
