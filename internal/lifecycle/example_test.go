package lifecycle_test

import (
	"fmt"
	"os"

	"github.com/talos-ironclad/talos/internal/lifecycle"
)

// A run that ends without End leaves its marker; the next Begin reports
// the unclean stop.
func Example() {
	home, _ := os.MkdirTemp("", "lifecycle")
	defer os.RemoveAll(home)
	l := lifecycle.New(home)

	l.Begin(lifecycle.Run{PID: 100}) // …and the process is killed
	rec, err := l.Begin(lifecycle.Run{PID: 200})
	fmt.Println(rec.Unclean, rec.Previous.PID, rec.RecentUnclean, err)
	l.End()
	rec, _ = l.Begin(lifecycle.Run{PID: 300})
	fmt.Println(rec.Unclean)
	// Output:
	// true 100 1 <nil>
	// false
}
