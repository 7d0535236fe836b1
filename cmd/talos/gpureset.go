package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/vram"
)

func newGPUResetCmd() *cobra.Command {
	var (
		addr    string
		timeout time.Duration
	)
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Take the running daemon's VRAM mutex out of Error after you freed the GPU by hand",
		Long: `When a model runner could not be killed, the VRAM mutex stops in Error
(GPU_UNRECOVERABLE) and refuses every load until an operator says the GPU is
usable again. Free the GPU first (stop the runtime, or reboot), then run this:
it posts to the daemon's ` + vram.ResetPath + ` with the operator credentials
(BASIC_AUTH_USER / BASIC_AUTH_PASS from talos.env). Exit 0 when the mutex was
reset or had nothing to reset, 1 otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, nil)
			if cfg == nil {
				return err
			}
			if cfg.BasicAuthPass.Value() == "" {
				return errors.New("BASIC_AUTH_PASS is not set: the reset needs the operator credentials from talos.env (run `talos init` to create them)")
			}
			target, note, err := healthTarget(cmd, addr)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			msg, err := postVRAMReset(ctx, target, cfg.BasicAuthUser, cfg.BasicAuthPass.Value())
			if err != nil {
				if note != "" {
					err = fmt.Errorf("%w (%s)", err, note)
				}
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), msg)
			return nil
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "", "host:port of the daemon's health server (default: from .ready, else the config)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "overall time limit")
	return cmd
}

// postVRAMReset asks the daemon at addr to reset its VRAM mutex and returns
// what to tell the operator.
func postVRAMReset(ctx context.Context, addr, user, pass string) (string, error) {
	url := "http://" + addr + vram.ResetPath
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	if err != nil {
		return "", fmt.Errorf("bad daemon address %q: %w", addr, err)
	}
	req.SetBasicAuth(user, pass)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("daemon not reachable at %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK:
		var s vram.Stats
		if err := json.Unmarshal(body, &s); err != nil {
			return "", fmt.Errorf("%s answered 200 but not with VRAM mutex stats: %v", url, err)
		}
		return fmt.Sprintf("VRAM mutex reset: now %s; loads are allowed again", s.State), nil
	case http.StatusConflict:
		var m struct{ Message string }
		_ = json.Unmarshal(body, &m)
		return m.Message, nil
	case http.StatusUnauthorized:
		return "", fmt.Errorf("the daemon at %s refused the operator credentials: check BASIC_AUTH_USER / BASIC_AUTH_PASS in talos.env match the daemon's", addr)
	case http.StatusNotFound:
		return "", fmt.Errorf("the daemon at %s has no VRAM mutex (no GPU, or no TALOS_OLLAMA_URL): nothing to reset", addr)
	}
	return "", fmt.Errorf("%s answered HTTP %d: %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
}
