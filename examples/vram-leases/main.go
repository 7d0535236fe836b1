// Command vram-leases shows two local models sharing one GPU through a
// vram.Mutex: leases on the resident model, a fair swap (a request for the
// other model waits for the last lease, and later requests queue behind it
// instead of starving it), and the T100 timeout of a request that waits too
// long.
//
// The GPU and the model runtime are vramtest fakes (loading a model raises the
// fake GPU's used memory), so it needs no GPU and no Ollama:
//
//	go run ./examples/vram-leases
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	talos "github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/vramtest"
)

// The two models of the walkthrough: together they do not fit on the 12 GiB
// GPU, so only one may be resident at a time.
const (
	coder  = "qwen2.5-coder:7b"
	vision = "llava:13b"
)

// acquireTimeout bounds how long a request waits in the queue. The spec's
// default (vram.DefaultAcquireTimeout) is 30 s; one second keeps `go run`
// short. The test runs the walkthrough inside testing/synctest, where the
// wait takes no real time.
const acquireTimeout = time.Second

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "vram-leases:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, w io.Writer) error {
	gpu := vramtest.NewGPU(12 * vram.GiB)
	runtime := vramtest.NewRuntime(map[string]uint64{coder: 5 * vram.GiB, vision: 8 * vram.GiB}, gpu, nil)
	m, err := vram.New(vram.Config{
		Models: map[string]vram.Model{
			coder:  {MinFree: 6 * vram.GiB, Size: 5 * vram.GiB},
			vision: {MinFree: 9 * vram.GiB, Size: 8 * vram.GiB},
		},
		AcquireTimeout: acquireTimeout,
	}, runtime, gpu, nil, nil)
	if err != nil {
		return err
	}
	defer m.Close()

	show := func(what string) {
		s := m.Stats()
		fmt.Fprintf(w, "  %-46s state=%s model=%s leases=%d waiters=%d gpu=%d/12GiB\n",
			what, s.State, s.Model, s.Leases, s.Waiters, gpu.Used()/vram.GiB)
	}
	// waitFor polls until n requests wait in the mutex's queue.
	waitFor := func(n int) error {
		for m.Stats().Waiters < n {
			select {
			case <-time.After(time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}
	type grant struct {
		lease *vram.Lease
		err   error
	}
	acquireAsync := func(model string) <-chan grant {
		ch := make(chan grant, 1)
		go func() {
			l, err := m.Acquire(ctx, model)
			ch <- grant{l, err}
		}()
		return ch
	}

	fmt.Fprintln(w, "# Leases share the resident model.")
	first, err := m.Acquire(ctx, coder)
	if err != nil {
		return err
	}
	show("first coder lease (loads the model):")
	second, err := m.Acquire(ctx, coder)
	if err != nil {
		return err
	}
	show("second coder lease (no reload):")

	fmt.Fprintln(w, "# A fair swap: vision waits for the coder leases; a later coder request waits behind vision.")
	visionCh := acquireAsync(vision)
	if err := waitFor(1); err != nil {
		return err
	}
	show("vision requested:")
	coderCh := acquireAsync(coder)
	if err := waitFor(2); err != nil {
		return err
	}
	show("third coder request queued behind vision:")
	first.Release()
	show("first coder lease released:")
	second.Release()
	v := <-visionCh
	if v.err != nil {
		return v.err
	}
	show("last coder lease released, vision swapped in:")
	select {
	case <-coderCh:
		return errors.New("the coder request overtook vision")
	default:
		fmt.Fprintf(w, "  coder resident: %t, vision resident: %t; the coder request still waits\n",
			runtime.IsResident(coder), runtime.IsResident(vision))
	}
	v.lease.Release()
	c := <-coderCh
	if c.err != nil {
		return c.err
	}
	show("vision released, coder swapped back in:")

	fmt.Fprintf(w, "# A request that waits longer than AcquireTimeout (%s) gets T100 and changes nothing.\n", acquireTimeout)
	_, err = m.Acquire(ctx, vision) // the coder lease c is still held
	if !errors.Is(err, talos.ErrVRAMTimeout) {
		return fmt.Errorf("want a T100 VRAM timeout while coder is leased, got %v", err)
	}
	fmt.Fprintf(w, "  %v\n", err)
	show("after the timeout:")
	c.lease.Release()

	s := m.Stats()
	fmt.Fprintf(w, "stats: %d grants, %d loads, %d unloads, %d timeouts\n", s.Grants, s.Loads, s.Unloads, s.Timeouts)
	return nil
}
