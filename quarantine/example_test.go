package quarantine_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/quarantinetest"
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

// approvalInbox stands in for a person reading the code elsewhere.
type approvalInbox struct{ code string }

func (a *approvalInbox) Notify(_ context.Context, n quarantine.Notice) error {
	a.code = n.Code
	return nil
}
func (a *approvalInbox) Name() string { return "inbox" }

func ExampleManager() {
	ctx := context.Background()
	root, _ := os.MkdirTemp("", "talos-skills-")
	defer os.RemoveAll(root)
	src := filepath.Join(root, "hello")
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "skill.yaml"), []byte("id: hello_world\nversion: 1.0.0\nlanguage: python\nentry: main.py\n"), 0o644)
	os.WriteFile(filepath.Join(src, "main.py"), []byte("print('hello')\n"), 0o644)

	inbox := &quarantinetest.Inbox{} // stands in for a person reading the code elsewhere
	m, err := quarantine.New(quarantine.Config{
		Dir:     filepath.Join(root, "skills"),
		CodeKey: bytes.Repeat([]byte{1}, quarantine.MinCodeKeyLen), // use 32 random bytes
		MinAge:  time.Nanosecond,                                   // the default is 24 h
	}, quarantinetest.NewStore(), inbox)
	if err != nil {
		fmt.Println(err)
		return
	}
	rec, _ := m.Add(ctx, src, quarantine.Source{Type: quarantine.SourceUser, Origin: "alice"}, "user:alice")
	rep, _, _ := m.Scan(ctx, rec.Key, "system")
	fmt.Println("scan passed:", rep.Passed())
	for i := 0; i < quarantine.DefaultMinCleanRuns; i++ {
		m.StartRun(ctx, rec.Key, "sandbox")
		// … the sandbox runs rec.Path/rec.Entry here …
		m.FinishRun(ctx, rec.Key, "sandbox", quarantine.RunResult{Passed: true, Reason: "exit 0"})
	}
	req, _ := m.RequestPromotion(ctx, rec.Key, "user:alice")
	fmt.Println("code sent through", req.Channel)
	code, _ := inbox.Code(rec.Key)
	promoted, err := m.Approve(ctx, rec.Key, code, "user:alice")
	fmt.Println(promoted.State, filepath.Base(promoted.ActivePath), err)
	// Output:
	// scan passed: true
	// code sent through inbox
	// promoted hello_world-1.0.0 <nil>
}
