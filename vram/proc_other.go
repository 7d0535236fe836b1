//go:build !linux

package vram

import (
	"errors"
	"syscall"
)

// OSProcesses returns the Processes of this machine. Only Linux is supported;
// elsewhere every call fails, so a hung unload ends in Error.
func OSProcesses() Processes { return osProcesses{} }

type osProcesses struct{}

var errUnsupported = errors.New("process control is only implemented on Linux")

// FindProcesses is only implemented on Linux.
func FindProcesses(func(argv []string) bool) ([]int, error) { return nil, errUnsupported }

func (osProcesses) Signal(int, syscall.Signal) error  { return errUnsupported }
func (osProcesses) Inspect(pid int) (ProcInfo, error) { return ProcInfo{PID: pid}, errUnsupported }
func (osProcesses) Reap(int) (bool, error)            { return false, errUnsupported }
