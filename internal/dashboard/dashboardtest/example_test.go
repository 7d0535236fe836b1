package dashboardtest_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/internal/dashboard/dashboardtest"
)

// JSString puts a Go string into a JavaScript expression as a literal, so
// a payload stays data in the script a test evaluates.
func ExampleJSString() {
	fmt.Println(`document.getElementById("q").value = ` + dashboardtest.JSString(`cats "and" `+dashboardtest.XSS))
	// Output:
	// document.getElementById("q").value = "cats \"and\" \u003cscript\u003ewindow.pwned=1\u003c/script\u003e\u003cimg src=x onerror=\"window.pwned=2\"\u003e"
}
