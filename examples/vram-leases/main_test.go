package main

import (
	"context"
	"strings"
	"testing"
	"testing/synctest"
)

// TestRun runs the walkthrough inside a synctest bubble (the vramtest fakes
// work there), so the one-second acquire timeout passes on the fake clock,
// and checks every step it prints: lease counts, the order of the swap, the
// T100 error and that the timeout changed nothing.
func TestRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var out strings.Builder
		if err := run(context.Background(), &out); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != want {
			t.Errorf("output differs.\n got:\n%s\nwant:\n%s", got, want)
		}
	})
}

const want = `# Leases share the resident model.
  first coder lease (loads the model):           state=ready model=qwen2.5-coder:7b leases=1 waiters=0 gpu=5/12GiB
  second coder lease (no reload):                state=ready model=qwen2.5-coder:7b leases=2 waiters=0 gpu=5/12GiB
# A fair swap: vision waits for the coder leases; a later coder request waits behind vision.
  vision requested:                              state=ready model=qwen2.5-coder:7b leases=2 waiters=1 gpu=5/12GiB
  third coder request queued behind vision:      state=ready model=qwen2.5-coder:7b leases=2 waiters=2 gpu=5/12GiB
  first coder lease released:                    state=ready model=qwen2.5-coder:7b leases=1 waiters=2 gpu=5/12GiB
  last coder lease released, vision swapped in:  state=ready model=llava:13b leases=1 waiters=1 gpu=8/12GiB
  coder resident: false, vision resident: true; the coder request still waits
  vision released, coder swapped back in:        state=ready model=qwen2.5-coder:7b leases=1 waiters=0 gpu=5/12GiB
# A request that waits longer than AcquireTimeout (1s) gets T100 and changes nothing.
  T100 VRAM_TIMEOUT: vram.Acquire: waited 1s for model "llava:13b" while the GPU was ready qwen2.5-coder:7b; nothing was changed: retry later or raise Config.AcquireTimeout
  after the timeout:                             state=ready model=qwen2.5-coder:7b leases=1 waiters=0 gpu=5/12GiB
stats: 4 grants, 3 loads, 2 unloads, 1 timeouts
`
