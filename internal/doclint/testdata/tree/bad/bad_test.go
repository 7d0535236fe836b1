package bad

import "fmt"

// ExampleDocumented prints but states no output, so go test never runs it.

func ExampleDocumented() {
	fmt.Println("never checked")
}
