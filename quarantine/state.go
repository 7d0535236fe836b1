package quarantine

import (
	"github.com/talos-ironclad/talos"
)

// State is where a skill record is in its lifecycle.
type State string

// The states of a skill record. Failed, Rejected and Deprecated are final:
// nothing leaves them, and the same content (id, version and hash) can never
// run again; a fixed skill comes back as a new version.
const (
	// Pending: added and waiting for its scan and first sandboxed run.
	StatePending State = "pending"
	// Executing: a sandboxed run is in progress.
	StateExecuting State = "executing"
	// Passed: the last sandboxed run was clean; more runs may follow.
	StatePassed State = "passed"
	// Failed: a run failed, the scan failed or the files changed.
	StateFailed State = "failed"
	// AwaitingPromotion: a person was sent an approval code.
	StateAwaitingPromotion State = "awaiting_promotion"
	// Promoted: approved and copied to the active skills.
	StatePromoted State = "promoted"
	// Rejected: a person refused it, the approval expired, the code was
	// guessed wrong too often, or the files changed while it waited.
	StateRejected State = "rejected"
	// Deprecated: taken out of use, for example after too many strikes.
	StateDeprecated State = "deprecated"
)

// Event is what moves a record from one state to another.
type Event string

// The events of the state machine.
const (
	// EventStartRun: the sandbox starts a run (pending or passed → executing).
	EventStartRun Event = "start_run"
	// EventRunPassed: the run ended cleanly (executing → passed).
	EventRunPassed Event = "run_passed"
	// EventInterrupt: a run ended without a verdict, for example because
	// the daemon stopped (executing → pending); it counts neither way.
	EventInterrupt Event = "interrupt"
	// EventFail: a run failed, the scan failed or the files no longer hash
	// to the record's hash (pending, executing or passed → failed).
	EventFail Event = "fail"
	// EventRequestPromotion: an eligible skill asks a person for approval
	// (passed → awaiting_promotion).
	EventRequestPromotion Event = "request_promotion"
	// EventApprove: the right code was entered and the files were copied to
	// the active skills (awaiting_promotion → promoted).
	EventApprove Event = "approve"
	// EventReject: a person refused, the approval expired, the code was
	// wrong too often or the files changed (awaiting_promotion → rejected).
	EventReject Event = "reject"
	// EventDeprecate: the skill is taken out of use (any state in which it
	// could still run or be promoted → deprecated).
	EventDeprecate Event = "deprecate"
)

// States lists every state, in lifecycle order.
func States() []State {
	return []State{StatePending, StateExecuting, StatePassed, StateFailed, StateAwaitingPromotion, StatePromoted, StateRejected, StateDeprecated}
}

// Events lists every event.
func Events() []Event {
	return []Event{EventStartRun, EventRunPassed, EventInterrupt, EventFail, EventRequestPromotion, EventApprove, EventReject, EventDeprecate}
}

type edge struct {
	from State
	ev   Event
}

// transitions is the whole state machine; every pair not in it is refused.
func transitions() map[edge]State {
	return map[edge]State{
		{StatePending, EventStartRun}:            StateExecuting,
		{StatePassed, EventStartRun}:             StateExecuting,
		{StateExecuting, EventRunPassed}:         StatePassed,
		{StateExecuting, EventInterrupt}:         StatePending,
		{StatePending, EventFail}:                StateFailed,
		{StateExecuting, EventFail}:              StateFailed,
		{StatePassed, EventFail}:                 StateFailed,
		{StatePassed, EventRequestPromotion}:     StateAwaitingPromotion,
		{StateAwaitingPromotion, EventApprove}:   StatePromoted,
		{StateAwaitingPromotion, EventReject}:    StateRejected,
		{StatePending, EventDeprecate}:           StateDeprecated,
		{StateExecuting, EventDeprecate}:         StateDeprecated,
		{StatePassed, EventDeprecate}:            StateDeprecated,
		{StateAwaitingPromotion, EventDeprecate}: StateDeprecated,
		{StatePromoted, EventDeprecate}:          StateDeprecated,
	}
}

// Final reports whether nothing can leave s.
func (s State) Final() bool {
	return s == StateFailed || s == StateRejected || s == StateDeprecated
}

// Valid reports whether s is one of the states.
func (s State) Valid() bool {
	for _, x := range States() {
		if s == x {
			return true
		}
	}
	return false
}

// Next returns the state event e moves s to. Every pair the state machine
// does not define is refused (code T406) with an error that names the state,
// the event and the events s accepts.
func Next(s State, e Event) (State, error) {
	t := transitions()
	if to, ok := t[edge{s, e}]; ok {
		return to, nil
	}
	const op = "quarantine.Next"
	if !s.Valid() {
		return "", talos.Errorf(talos.CodePolicyDenied, op, "unknown state %q", clip(string(s), 40))
	}
	var accepts []string
	for _, ev := range Events() {
		if _, ok := t[edge{s, ev}]; ok {
			accepts = append(accepts, string(ev))
		}
	}
	if len(accepts) == 0 {
		return "", talos.Errorf(talos.CodePolicyDenied, op, "a %s skill accepts no event (it is final; bring a fixed skill back as a new version), not %q", s, clip(string(e), 40))
	}
	return "", talos.Errorf(talos.CodePolicyDenied, op, "a %s skill cannot take event %q: it accepts only %v", s, clip(string(e), 40), accepts)
}
