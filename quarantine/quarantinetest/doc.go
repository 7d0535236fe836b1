// Package quarantinetest helps test code that uses package quarantine: an
// in-memory [Store] that behaves as the SQL store does, an [Inbox] notifier
// that keeps the approval codes a person would receive, and [RunStore], the
// conformance suite every quarantine.Store must pass (the SQL store runs it
// against SQLite and PostgreSQL).
//
//	store, inbox := quarantinetest.NewStore(), &quarantinetest.Inbox{}
//	m, err := quarantine.New(quarantine.Config{Dir: dir, CodeKey: key}, store, inbox)
package quarantinetest
