// Package vramprom exports a vram.Mutex's Stats as Prometheus metrics
// (talos_vram_state, talos_vram_leases, talos_vram_wait_seconds, …) through
// a prometheus.Collector registered on the registry of your choice; it never
// touches the global one.
//
// It is a separate package so that vram itself depends on nothing outside
// the standard library: only a program that serves Prometheus metrics pulls
// in the Prometheus client.
package vramprom
