package vram_test

import (
	"testing"

	"github.com/talos-ironclad/talos/proc"
	"github.com/talos-ironclad/talos/proc/proctest"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// The fake runner table passes the one conformance suite of process
// helpers, which proc.OS() passes too (in package proc).
func TestFakeProcessesConformance(t *testing.T) {
	proctest.Run(t, func(t *testing.T) (proc.Processes, proctest.Spawner) {
		ps := vramtest.NewProcesses()
		return ps, func(t *testing.T, ignoreTerm bool) int {
			b := vramtest.ExitOnTerm
			if ignoreTerm {
				b = vramtest.IgnoreTerm
			}
			return ps.Spawn(vramtest.Proc{Behavior: b, Child: true})
		}
	})
}

// The kill ladder takes the real process helpers as they are.
var _ vram.Processes = proc.OS()
