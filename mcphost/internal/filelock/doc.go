// Package filelock is the exclusive lock between processes that mcphost's
// pin file and the gateway's state file take around each read-merge-write:
// flock(2) where it exists, nothing elsewhere.
package filelock
