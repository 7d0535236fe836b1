package config_test

import (
	"errors"
	"fmt"
	"os"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/config"
)

func ExampleLoad() {
	home, _ := os.MkdirTemp("", "talos-example")
	defer os.RemoveAll(home)

	env := map[string]string{
		"TRUST_LEVEL":     "9",
		"BASIC_AUTH_PASS": "too-short",
	}
	_, err := config.Load(config.LoadOptions{
		Home:      home,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Flags:     map[string]string{"LOG_LEVEL": "DEBUG"},
	})
	var ve *config.ValidationError
	if errors.As(err, &ve) {
		for _, p := range ve.Problems {
			fmt.Printf("%s (%s): %s\n", p.Var, p.Value, p.Message)
		}
	}
	fmt.Println("T004:", errors.Is(err, talos.ErrEnvInvalid))
	// Output:
	// TRUST_LEVEL (9): TRUST_LEVEL must be between 0 and 5 (got: 9)
	// BASIC_AUTH_PASS (<redacted>): BASIC_AUTH_PASS must be at least 16 characters (got: 9)
	// BASIC_AUTH_PASS (<redacted>): BASIC_AUTH_PASS must mix upper-case letters, lower-case letters, digits and symbols (missing: upper-case letters, digits)
	// T004: true
}
