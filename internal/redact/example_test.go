package redact_test

import (
	"fmt"
	"strings"

	"github.com/talos-ironclad/talos/internal/redact"
)

func Example() {
	fmt.Println(redact.URL("postgres://talos:s3cret@db:5432/talos?sslmode=disable&token=abc"))
	fmt.Println(redact.Text(`Get "http://127.0.0.1:8000/api?api_key=abc": connection refused`))
	fmt.Println(redact.Value(strings.Repeat("7", 100) + "\x1b"))
	// Output:
	// postgres://talos:<redacted>@db:5432/talos?sslmode=disable&token=<redacted>
	// Get "http://127.0.0.1:8000/api?api_key=<redacted>": connection refused
	// "7777777777777777777777777777777777777777777777777777777777777777"… (101 bytes)
}
