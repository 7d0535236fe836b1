//go:build !linux

package proc

import (
	"errors"
	"syscall"
)

var errUnsupported = errors.New("proc: process control is only implemented on Linux")

func (osProcesses) Signal(int, syscall.Signal) error      { return errUnsupported }
func (osProcesses) SignalGroup(int, syscall.Signal) error { return errUnsupported }
func (osProcesses) Stat(int) (Stat, error)                { return Stat{}, errUnsupported }
func (osProcesses) Reap(int) (bool, error)                { return false, errUnsupported }

// Find is only implemented on Linux; elsewhere it returns an error.
func Find(func(argv []string) bool) ([]int, error) { return nil, errUnsupported }
