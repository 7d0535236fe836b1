// Package vramtest provides fakes for testing code that uses package vram:
// a model Runtime, a GPU and a process table, linked together so that loading
// a model raises the GPU's used memory and killing its runner frees it. It
// also holds the conformance suites every Runtime and GPU implementation
// should pass (RunRuntime, RunGPU).
//
// The fakes need no real time: a hung unload blocks until its context ends,
// and process exits are timestamped, so they work inside testing/synctest.
package vramtest
