// Package mcphosttest helps test code that uses mcphost: an Auditor that
// records every call's shape, a scripted ResultScanner, and
// PinStoreConformance, the suite every mcphost.PinStore (the in-memory one
// and any persistent one) must pass.
package mcphosttest
