// Package quarantinetest helps test code that uses package quarantine: an
// in-memory [Store] that behaves as the SQL store does, and [RunStore], the
// conformance suite every quarantine.Store must pass (the SQL store runs it
// against SQLite and PostgreSQL).
//
//	store := quarantinetest.NewStore()
//	m, err := quarantine.New(quarantine.Config{Dir: dir, CodeKey: key}, store, notifier, nil)
package quarantinetest
