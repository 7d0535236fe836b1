package nodoc

import "fmt"

func Example() {
	fmt.Println("ok")
	// Output: ok
}
