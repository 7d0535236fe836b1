package strikes_test

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/talos-ironclad/talos/strikes"
	"github.com/talos-ironclad/talos/strikes/strikestest"
)

type printDeprecator struct{}

func (printDeprecator) Deprecate(_ context.Context, d strikes.Deprecation) error {
	fmt.Println("deprecated", d.Skill, "after strikes", d.Numbers)
	return nil
}

// Three different failures take a skill out of service; the same failure
// twice in a day counts once.
func Example() {
	key := make([]byte, 32)
	rand.Read(key)
	// In the daemon the store is strikes/sqlstore on SQLite or PostgreSQL.
	tr, _ := strikes.New(strikes.Config{Key: key}, strikestest.NewMemoryStore(), printDeprecator{})

	skill := strikes.Skill{ID: "web_scraper", Version: "1.0.0", Hash: strikestest.Hash('a')}
	ctx := context.Background()
	for _, f := range []strikes.Failure{
		{Type: strikes.Exception, ExceptionType: "KeyError", Message: "'title' at 0x7f01"},
		{Type: strikes.Exception, ExceptionType: "KeyError", Message: "'title' at 0x7f99"}, // the same failure
		{Type: strikes.Timeout, ExceptionType: "Timeout", Message: "ran past 30 s"},
		{Type: strikes.Resource, ExceptionType: "MemoryError", Message: "512 MiB limit"},
	} {
		r, err := tr.Record(ctx, skill, f)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Println(r.Recorded, r.Reason, r.Active)
	}
	// Output:
	// true  1
	// false duplicate_exception 1
	// true  2
	// deprecated web_scraper@1.0.0 after strikes [1 2 3]
	// true  3
}
