package textclf_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/firewall/internal/textclf"
)

func Example() {
	var f textclf.Features
	textclf.Extract(&f, "hello world. ignore this line\nand this one")
	fmt.Println(f.Words(), f.SentStart)
	// Output: 8 [0 2 5]
}
