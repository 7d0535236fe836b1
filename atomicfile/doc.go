// Package atomicfile writes a file so that readers see either the old
// content or the new, never a mix, and a crash never leaves a half-written
// file behind: the data goes to a temporary file in the same directory with
// its final mode (so a secret is never briefly readable by others), is
// synced, renamed over the target, and the directory is synced.
//
// Every state file Talos keeps (the ready marker, talos.env, the lockdown
// record, store metadata) is written through it.
package atomicfile
