package vram

// State is the state of the mutex, including "model resident" (Ready)
// between loads.
type State int

// States. Loading, Ready and Unloading concern one model (Stats.Model).
const (
	// Idle: no model is resident. Loads may start unless a cooldown runs.
	Idle State = iota
	// Loading: a model is being loaded.
	Loading
	// Ready: a model is resident; leases on it may be granted.
	Ready
	// Unloading: a model is being unloaded (or its runner killed).
	Unloading
	// Error: a runner could not be killed (GPU_UNRECOVERABLE). Only Reset
	// leaves this state.
	Error
)

var stateNames = [...]string{"idle", "loading", "ready", "unloading", "error"}

// String returns the lower-case name of the state.
func (s State) String() string {
	if s >= 0 && int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "invalid"
}

// Transition is one edge of the state machine.
type Transition struct {
	From, To State
}

// String formats the transition as "from->to".
func (t Transition) String() string { return t.From.String() + "->" + t.To.String() }

// Transitions returns every edge the mutex may take, with the event that
// takes it. Any other edge is a bug; the tests check that none is ever taken.
func Transitions() map[Transition]string {
	return map[Transition]string{
		{Idle, Loading}:      "load: the head of the queue wants a model and nothing is resident",
		{Idle, Ready}:        "adopt: the runtime already holds another configured model (daemon restart); it is swapped out next",
		{Loading, Ready}:     "load complete and the runtime lists the model",
		{Loading, Unloading}: "load failed or timed out: emergency unload",
		{Ready, Unloading}:   "swap: the last lease was released and the queue wants another model",
		{Unloading, Idle}:    "unload complete, or the hung runner was killed (cooldown follows)",
		{Unloading, Error}:   "the hung runner could not be killed",
		{Idle, Error}:        "post-kill diagnostics found a critical problem",
		{Error, Idle}:        "operator Reset",
	}
}

var allowed = Transitions()
