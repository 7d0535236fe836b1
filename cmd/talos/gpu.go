package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/vram"
	"github.com/talos-ironclad/talos/vram/nvml"
)

// exitNoGPU is the exit code of `talos gpu status` when no GPU reading could
// be taken (no GPU, no driver, or a failing one).
const exitNoGPU = 2

func newGPUCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "gpu",
		Short: "GPU memory and the VRAM mutex",
	}
	cmd.AddCommand(newGPUStatusCmd(), newGPUResetCmd())
	return cmd
}

// gpuStatus is the JSON output of `talos gpu status --json`.
type gpuStatus struct {
	GPU        *vram.Reading `json:"gpu,omitempty"`
	GPUError   *gpuProblem   `json:"gpu_error,omitempty"`
	Mutex      *vram.Stats   `json:"mutex,omitempty"`
	MutexError string        `json:"mutex_error,omitempty"`
	Daemon     string        `json:"daemon,omitempty"`
}

type gpuProblem struct {
	Kind     vram.ProbeKind     `json:"kind"`
	Severity vram.ProbeSeverity `json:"severity"`
	Action   vram.ProbeAction   `json:"action"`
	Message  string             `json:"message"`
	Error    string             `json:"error"`
}

func newGPUStatusCmd() *cobra.Command {
	var (
		index   int
		addr    string
		asJSON  bool
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print GPU memory (NVML, else nvidia-smi) and the VRAM mutex's state (exit 2 when no GPU can be read)",
		Long: `Read the GPU's memory through NVML, else nvidia-smi, and print it; then ask the
running daemon (--addr, else its ready marker, else the config) for the VRAM
mutex: state, resident model, leases and waiters. Exit 0 when the GPU was
read, 2 when no GPU reading could be taken.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			var st gpuStatus
			r, err := nvml.Detect(nvml.Config{Index: index}).Memory(ctx)
			if err == nil {
				st.GPU = &r
			} else {
				h := vram.HandlingFor(vram.KindOf(err))
				st.GPUError = &gpuProblem{Kind: vram.KindOf(err), Severity: h.Severity, Action: h.Action, Message: h.Message, Error: err.Error()}
			}
			target, note, terr := healthTarget(cmd, addr)
			switch {
			case terr != nil:
				st.MutexError = terr.Error()
			default:
				st.Daemon = target
				s, ferr := fetchVRAM(ctx, target)
				if ferr != nil {
					st.MutexError = ferr.Error()
					if note != "" {
						st.MutexError += " (" + note + ")"
					}
				} else {
					st.Mutex = &s
				}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if err := enc.Encode(st); err != nil {
					return err
				}
			} else {
				printGPUStatus(out, index, st)
			}
			if st.GPU == nil {
				return withExit(exitNoGPU, fmt.Errorf("no GPU reading: %s", st.GPUError.Message))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&index, "index", 0, "GPU index (as NVML and nvidia-smi number them)")
	cmd.Flags().StringVar(&addr, "addr", "", "host:port of the daemon's health server (default: from .ready, else the config)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "overall time limit")
	return cmd
}

func fetchVRAM(ctx context.Context, addr string) (vram.Stats, error) {
	var s vram.Stats
	url := "http://" + addr + vram.HandlerPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return s, fmt.Errorf("bad daemon address %q: %w", addr, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return s, fmt.Errorf("daemon not reachable at %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		why := "it runs without a local model"
		// The daemon's gpu check says why (no GPU, no Ollama, unreadable).
		if rep, _, herr := fetchHealth(ctx, addr); herr == nil {
			if c, ok := rep.Checks[daemon.NameGPU]; ok {
				why = c.Detail
			}
		}
		return s, fmt.Errorf("the daemon at %s has no VRAM mutex (%s answered 404): %s", addr, vram.HandlerPath, why)
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("%s answered HTTP %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&s); err != nil {
		return s, errors.New(url + " did not answer with VRAM mutex stats: " + err.Error())
	}
	return s, nil
}

func printGPUStatus(w io.Writer, index int, st gpuStatus) {
	const gb = float64(vram.GiB)
	switch {
	case st.GPU != nil:
		r := st.GPU
		stale := ""
		if r.Stale {
			stale = " (stale: last known reading)"
		}
		fmt.Fprintf(w, "GPU %d (%s): %.1f GB used of %.1f GB, %.1f GB free%s\n", index, r.Source,
			float64(r.Used)/gb, float64(r.Total)/gb, float64(r.Free())/gb, stale)
	case st.GPUError.Kind == vram.ProbeCommandNotFound || st.GPUError.Kind == vram.ProbeGPUNotFound:
		fmt.Fprintf(w, "GPU: no GPU found (%s; action %s)\n  %s\n", st.GPUError.Message, st.GPUError.Action, st.GPUError.Error)
	default:
		fmt.Fprintf(w, "GPU: cannot be read: %s [%s, severity %s, action %s]\n  %s\n", st.GPUError.Kind, st.GPUError.Message,
			st.GPUError.Severity, st.GPUError.Action, st.GPUError.Error)
	}
	if st.Mutex == nil {
		fmt.Fprintf(w, "VRAM mutex: unknown: %s\n", st.MutexError)
		return
	}
	s := st.Mutex
	model := s.Model
	if model == "" {
		model = "none"
	}
	fmt.Fprintf(w, "VRAM mutex (daemon at %s): %s, model %s, %d leases, %d waiting\n", st.Daemon, s.State, model, s.Leases, s.Waiters)
	if !s.CooldownUntil.IsZero() {
		fmt.Fprintf(w, "  cooldown after a kill until %s\n", s.CooldownUntil.Format(time.RFC3339))
	}
	if s.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", s.Error)
	}
	if k := s.LastKill; k != nil {
		fmt.Fprintf(w, "  last kill: pid %d (%s) by %s at %s\n", k.PID, k.Model, k.Method, k.Started.Format(time.RFC3339))
	}
}
