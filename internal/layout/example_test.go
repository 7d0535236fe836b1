package layout_test

import (
	"fmt"
	"os"

	"github.com/talos-ironclad/talos/internal/layout"
)

func ExampleLayout_Verify() {
	home, _ := os.MkdirTemp("", "talos-layout")
	defer os.RemoveAll(home)

	l, _ := layout.New(home, nil)
	if _, err := l.Create(); err != nil {
		fmt.Println(err)
		return
	}
	// Someone opened up the keys directory.
	os.Chmod(l.Path(layout.Keys), 0o755)

	fixes, err := l.Verify()
	fmt.Println("error:", err)
	for _, f := range fixes {
		fmt.Printf("fixed %s: %o -> %o\n", layout.Keys, f.Was.Perm(), f.Now.Perm())
	}
	// Output:
	// error: <nil>
	// fixed keys: 755 -> 700
}
