// Package strikestest has an in-memory strikes.Store for tests of code that
// uses the strikes package, and the conformance suite every strikes.Store —
// this fake and strikes/sqlstore on SQLite and PostgreSQL — passes.
package strikestest
