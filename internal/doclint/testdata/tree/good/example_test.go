package good_test

import "fmt"

func Example() {
	fmt.Println("hi")
	// Output: hi
}

func ExampleT_M() {
	// This one runs and must print nothing.

	// Output:
}
