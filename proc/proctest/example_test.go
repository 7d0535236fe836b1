package proctest_test

import (
	"fmt"
	"syscall"

	"github.com/talos-ironclad/talos/proc/proctest"
)

func ExampleProcs() {
	p := proctest.NewProcs()
	p.Add(100, "chromium", 1, true) // ignores SIGTERM
	_ = p.Signal(100, syscall.SIGTERM)
	fmt.Println("alive after SIGTERM:", p.Alive(100))
	_ = p.Signal(100, syscall.SIGKILL)
	fmt.Println("alive after SIGKILL:", p.Alive(100))
	fmt.Println("signals:", len(p.Sent()))
	// Output:
	// alive after SIGTERM: true
	// alive after SIGKILL: false
	// signals: 2
}
