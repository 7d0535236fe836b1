package quarantine

import (
	"errors"
	"strings"
	"testing"

	"github.com/talos-ironclad/talos"
)

func TestStateMachineEveryPair(t *testing.T) {
	allowed := map[State]map[Event]State{
		StatePending:           {EventStartRun: StateExecuting, EventFail: StateFailed, EventDeprecate: StateDeprecated},
		StateExecuting:         {EventRunPassed: StatePassed, EventInterrupt: StatePending, EventFail: StateFailed, EventDeprecate: StateDeprecated},
		StatePassed:            {EventStartRun: StateExecuting, EventFail: StateFailed, EventRequestPromotion: StateAwaitingPromotion, EventDeprecate: StateDeprecated},
		StateAwaitingPromotion: {EventApprove: StatePromoted, EventReject: StateRejected, EventDeprecate: StateDeprecated},
		StatePromoted:          {EventDeprecate: StateDeprecated},
		StateFailed:            {},
		StateRejected:          {},
		StateDeprecated:        {},
	}
	if len(allowed) != len(States()) {
		t.Fatalf("table covers %d states, the machine has %d", len(allowed), len(States()))
	}
	n := 0
	for _, s := range States() {
		for _, e := range Events() {
			n++
			got, err := Next(s, e)
			want, ok := allowed[s][e]
			switch {
			case ok && (err != nil || got != want):
				t.Errorf("%s + %s = %q, %v; want %s", s, e, got, err, want)
			case !ok && err == nil:
				t.Errorf("%s + %s = %s; want refused", s, e, got)
			case !ok:
				if !errors.Is(err, talos.ErrPolicyDenied) || !strings.Contains(err.Error(), string(s)) || !strings.Contains(err.Error(), string(e)) {
					t.Errorf("%s + %s: unclear refusal: %v", s, e, err)
				}
			}
		}
		if s.Final() != (len(allowed[s]) == 0) {
			t.Errorf("%s.Final() = %v", s, s.Final())
		}
	}
	if n != 64 {
		t.Fatalf("checked %d pairs", n)
	}
	if _, err := Next("bogus", EventFail); err == nil || !strings.Contains(err.Error(), "unknown state") {
		t.Fatalf("unknown state: %v", err)
	}
}
