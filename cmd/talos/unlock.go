package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/internal/boot"
	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/host"
)

// Exit codes of `talos unlock`.
const (
	exitUnlockRefused = 1 // wrong, expired or exhausted code; not locked
	exitUnlockSetup   = 2 // bad input, settings, or the daemon unreachable
)

func newUnlockCmd() *cobra.Command {
	var reissue bool
	cmd := &cobra.Command{
		Use:   "unlock [CODE]",
		Short: "Lift the firewall's security lockdown with the code delivered out of band, or ask for a new code",
		Long: `A prompt-injection attempt puts the agent in security lockdown: every chat turn is
refused until a person enters the 6-digit code that was delivered out of band (the file
` + host.UnlockCodeFile + ` under TALOS_HOME, mode 0600, and the daemon's console). Codes
expire after 24 hours and 5 wrong tries exhaust them; --reissue delivers a new code the
same way (the old one stops working).

With a daemon running (its ready marker names it) the request goes to it, with the
operator credentials BASIC_AUTH_USER / BASIC_AUTH_PASS from talos.env; without one the
persisted lockdown state is changed directly.

Exit codes: 0 unlocked (or a new code delivered), 1 refused (wrong, expired or exhausted
code, or not in lockdown), 2 invalid input, settings, or the daemon unreachable.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			code := ""
			if len(args) == 1 {
				code = strings.TrimSpace(args[0])
			}
			switch {
			case reissue && code != "":
				return withExit(exitUnlockSetup, errors.New("give either a CODE or --reissue, not both"))
			case !reissue && code == "":
				return withExit(exitUnlockSetup, fmt.Errorf("no code given: run talos unlock CODE with the code from %s, or talos unlock --reissue for a new one", host.UnlockCodeFile))
			case !reissue:
				if _, err := chatapi.ParseUnlock([]byte(`{"code":` + jsonString(code) + `}`)); err != nil {
					return withExit(exitUnlockSetup, err)
				}
			}
			cfg, err := loadConfig(cmd, nil)
			if cfg == nil {
				return withExit(exitUnlockSetup, err)
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			out := cmd.OutOrStdout()
			r, rerr := boot.ReadReady(daemon.DefaultReadyPath(cfg.Home))
			if rerr == nil && r.Status == boot.StatusReady && r.HealthAddr != "" && processAlive(r.PID) {
				return unlockThroughDaemon(ctx, out, cfg, r.HealthAddr, code, reissue)
			}
			if rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				return withExit(exitUnlockSetup, rerr)
			}
			lock, err := host.OpenLockdown(ctx, cfg, nil, nil)
			if err != nil {
				return withExit(exitUnlockSetup, err)
			}
			if reissue {
				if err := lock.Reissue(ctx, "operator at the terminal"); err != nil {
					return withExit(exitUnlockRefused, err)
				}
				fmt.Fprintf(out, "a new unlock code was written to %s (no daemon is running)\n", host.UnlockCodeFile)
				return nil
			}
			res, err := lock.Unlock(ctx, code, "operator at the terminal")
			if err != nil {
				return withExit(exitUnlockSetup, err)
			}
			fmt.Fprintf(out, "%s: %s (no daemon is running; the persisted state was changed)\n", res, chatapi.UnlockMessage(res))
			if res != firewall.UnlockOK {
				return withExit(exitUnlockRefused, fmt.Errorf("not unlocked: %s", res))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&reissue, "reissue", false, "deliver a new unlock code out of band instead of unlocking")
	return cmd
}

func jsonString(s string) string { b, _ := json.Marshal(s); return string(b) }

func unlockThroughDaemon(ctx context.Context, out io.Writer, cfg *config.Config, addr, code string, reissue bool) error {
	path, body := chatapi.UnlockPath, `{"code":`+jsonString(code)+`}`
	if reissue {
		path, body = chatapi.ReissuePath, `{}`
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+path, strings.NewReader(body))
	if err != nil {
		return withExit(exitUnlockSetup, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(cfg.BasicAuthUser, cfg.BasicAuthPass.Value())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return withExit(exitUnlockSetup, fmt.Errorf("the daemon at %s is unreachable: %w", addr, err))
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	var rep chatapi.UnlockReply
	var eb chatapi.ErrorBody
	switch {
	case json.Unmarshal(raw, &rep) == nil && rep.Result != "":
		fmt.Fprintf(out, "%s: %s\n", rep.Result, rep.Message)
	case json.Unmarshal(raw, &eb) == nil && eb.Error != "":
		fmt.Fprintf(out, "refused: %s\n", eb.Error)
	default:
		return withExit(exitUnlockSetup, fmt.Errorf("the daemon at %s answered HTTP %d with something that is not a lockdown reply", addr, resp.StatusCode))
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return nil
	case http.StatusUnauthorized, http.StatusBadRequest, http.StatusInternalServerError:
		return withExit(exitUnlockSetup, fmt.Errorf("the daemon refused the request (HTTP %d)", resp.StatusCode))
	}
	return withExit(exitUnlockRefused, fmt.Errorf("not unlocked (HTTP %d)", resp.StatusCode))
}
