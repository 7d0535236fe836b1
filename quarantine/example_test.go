package quarantine_test

import (
	"fmt"

	"github.com/talos-ironclad/talos/quarantine"
)

func ExampleParseManifest() {
	m, err := quarantine.ParseManifest([]byte(`id: hello_world
version: 1.0.0
language: python
entry: main.py
`))
	fmt.Println(m.ID, m.Version, m.Language, err)

	_, err = quarantine.ParseManifest([]byte("id: Hi\nversion: 1.0\nlanguage: javascript\nentry: main.js\n"))
	fmt.Println(err)
	// Output:
	// hello_world 1.0.0 python <nil>
	// T301 SKILL_SYNTAX_ERROR: quarantine.ParseManifest: skill.yaml has 3 problem(s): id "Hi": want 3–64 characters, lower-case letters, digits and '_', starting with a letter; version "1.0": want MAJOR.MINOR.PATCH such as 1.0.0: numbers without leading zeros, no pre-release or build suffix; language "javascript": not supported: only python skills can run (the sandbox image has no JavaScript runtime)
}

func ExampleNext() {
	s := quarantine.StatePending
	for _, e := range []quarantine.Event{quarantine.EventStartRun, quarantine.EventRunPassed, quarantine.EventApprove} {
		next, err := quarantine.Next(s, e)
		if err != nil {
			fmt.Println(err)
			break
		}
		fmt.Println(s, "→", next)
		s = next
	}
	// Output:
	// pending → executing
	// executing → passed
	// T406 POLICY_DENIED: quarantine.Next: a passed skill cannot take event "approve": it accepts only [start_run fail request_promotion deprecate]
}
