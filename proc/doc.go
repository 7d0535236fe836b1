// Package proc signals and inspects the processes of this machine the way a
// supervisor needs to: it never signals a process group or every process by
// accident, it reads a process's state, parent, group and start time from
// /proc/<pid>/stat (the start time tells a process from a later one that
// reuses its PID), it collects an exited child without blocking, and it
// finds processes by their command line.
//
// Processes is the interface the rest of the module programs against, and
// OS returns the real one; package proctest holds the conformance suite that
// OS and every fake pass. Packages that need only part of it declare a
// smaller interface of their own, which a Processes satisfies.
//
// The real implementation needs Linux (/proc, kill(2), wait4(2)); elsewhere
// every call fails with an error saying so.
package proc
