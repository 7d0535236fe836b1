package proc_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/proc"
)

func ExampleParseStat() {
	// A process may name itself anything, ") Z (" included.
	st, err := proc.ParseStat("42 (a) Z (b) R 1 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("pid %d comm %q state %c ppid %d start %d zombie %v\n", st.PID, st.Comm, st.State, st.PPID, st.StartTime, st.Zombie())
	// Output:
	// pid 42 comm "a) Z (b" state R ppid 1 start 777 zombie false
}
