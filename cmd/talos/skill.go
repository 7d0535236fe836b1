package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/quarantine"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
	"github.com/talos-ironclad/talos/strikes"
)

// Exit codes of `talos skill`.
const (
	exitSkillFailed  = 1 // the operation was refused or failed (the message says why)
	exitSkillBadArgs = 2 // bad arguments or configuration
)

func newSkillCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "skill",
		Short: "Add, scan, inspect and promote skills kept in quarantine; show their strikes",
		Long: `Skills are folders with a skill.yaml manifest (id, version, language: python,
entry point, capabilities, pinned and hashed dependencies). A skill starts in
quarantine; trust is bound to its id, version and content hash, so an edited
byte or a new version starts over. Promotion needs clean sandboxed runs, a
passed scan, 24 hours in quarantine, and a 6-digit code delivered out of band
(to ` + host.ApprovalFile + ` under TALOS_HOME, readable by the owner only, and spoken
with espeak-ng when installed) — never printed to the requester.

Skills are named ID, ID@VERSION or ID@VERSION#HASH-PREFIX.`,
	}
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	out := func(cmd *cobra.Command, v any, text func(io.Writer)) error {
		if asJSON {
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			return enc.Encode(v)
		}
		text(cmd.OutOrStdout())
		return nil
	}
	open := func(cmd *cobra.Command) (*host.Skills, error) {
		cfg, err := loadConfig(cmd, nil)
		if err != nil {
			return nil, withExit(exitSkillBadArgs, err)
		}
		s, err := host.OpenSkills(cmd.Context(), cfg, nil, nil)
		if err != nil {
			return nil, withExit(exitSkillFailed, err)
		}
		return s, nil
	}
	// openRecord opens the skills and finds the record ref names; on an
	// error nothing is left open.
	openRecord := func(cmd *cobra.Command, ref string) (*host.Skills, quarantine.Record, error) {
		s, err := open(cmd)
		if err != nil {
			return nil, quarantine.Record{}, err
		}
		rec, err := resolve(cmd, s, ref)
		if err != nil {
			s.Close()
			return nil, rec, err
		}
		return s, rec, nil
	}

	var source, origin string
	add := &cobra.Command{
		Use:   "add DIR",
		Short: "Copy a skill folder into quarantine and record it as pending",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st := quarantine.SourceType(source)
			if !st.Valid() {
				return withExit(exitSkillBadArgs, fmt.Errorf("--source %q: want user_submitted, llm_generated, imported or forked", source))
			}
			s, err := open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			if origin == "" {
				origin = actor()
			}
			rec, err := s.Quarantine.Add(cmd.Context(), args[0], quarantine.Source{Type: st, Origin: origin}, actor())
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			return out(cmd, rec, func(w io.Writer) { fmt.Fprintf(w, "%s is %s (content %s)\n", name(rec.Key), rec.State, rec.Hash) })
		},
	}
	add.Flags().StringVar(&source, "source", string(quarantine.SourceUser), "where it comes from: user_submitted, llm_generated, imported, forked")
	add.Flags().StringVar(&origin, "origin", "", "who or what made it (default: you)")

	var state string
	list := &cobra.Command{
		Use:   "list",
		Short: "List skill records, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if state != "" && !quarantine.State(state).Valid() {
				return withExit(exitSkillBadArgs, fmt.Errorf("--state %q is not a skill state", state))
			}
			s, err := open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			recs, err := s.Quarantine.List(cmd.Context(), quarantine.Filter{State: quarantine.State(state)})
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			sort.Slice(recs, func(i, j int) bool { return recs[i].CreatedAt.After(recs[j].CreatedAt) })
			return out(cmd, recs, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SKILL\tSTATE\tSCAN\tRUNS OK/FAILED\tADDED")
				for _, r := range recs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d/%d\t%s\n", name(r.Key), r.State, r.Scan, r.CleanRuns, r.FailedRuns, r.CreatedAt.Format(time.RFC3339))
				}
				tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&state, "state", "", "only records in this state")

	show := &cobra.Command{
		Use:   "show SKILL",
		Short: "Show a record, its eligibility for promotion and its audit trail",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, rec, err := openRecord(cmd, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			el, err := s.Quarantine.Eligibility(cmd.Context(), rec.Key)
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			audit, err := s.Quarantine.Audit(cmd.Context(), rec.Key)
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			v := struct {
				Record      quarantine.Record
				Eligibility quarantine.Eligibility
				Audit       []quarantine.AuditEntry
			}{rec, el, audit}
			return out(cmd, v, func(w io.Writer) {
				fmt.Fprintf(w, "%s\n  state %s, scan %s, runs %d ok / %d failed, added %s by %s (%s)\n  content %s\n  files %s\n",
					name(rec.Key), rec.State, rec.Scan, rec.CleanRuns, rec.FailedRuns, rec.CreatedAt.Format(time.RFC3339),
					termText(rec.Source.Origin), rec.Source.Type, rec.Hash, rec.Path)
				if el.Eligible() {
					fmt.Fprintln(w, "  eligible for promotion")
				} else {
					fmt.Fprintln(w, "  not eligible for promotion:")
					for _, p := range el.Problems {
						fmt.Fprintln(w, "    - "+p)
					}
				}
				fmt.Fprintln(w, "  audit:")
				for _, a := range audit {
					fmt.Fprintf(w, "    %s %s %s %s→%s %s\n", a.Time.Format(time.RFC3339), termText(a.Actor), a.Event, a.From, a.To, termText(a.Reason))
				}
			})
		},
	}

	scan := &cobra.Command{
		Use:   "scan SKILL",
		Short: "Scan a quarantined skill's files; a critical or high finding fails it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, rec, err := openRecord(cmd, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			rep, rec, err := s.Quarantine.Scan(cmd.Context(), rec.Key, actor())
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			if err := out(cmd, rep, func(w io.Writer) {
				for _, f := range rep.Findings {
					fmt.Fprintln(w, termText(f.String()))
				}
				fmt.Fprintf(w, "%s: scan %s, %d findings; now %s\n", name(rec.Key), rec.Scan, len(rep.Findings), rec.State)
			}); err != nil {
				return err
			}
			if !rep.Passed() {
				return withExit(exitSkillFailed, fmt.Errorf("%s failed its scan", name(rec.Key)))
			}
			return nil
		},
	}

	request := &cobra.Command{
		Use:   "request-promotion SKILL",
		Short: "Ask for promotion: the code goes to the owner out of band",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, rec, err := openRecord(cmd, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			req, err := s.Quarantine.RequestPromotion(cmd.Context(), rec.Key, actor())
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			return out(cmd, req, func(w io.Writer) {
				fmt.Fprintf(w, "promotion of %s requested; the approval code went to %s and is valid until %s\nrun: talos skill approve %s CODE\n",
					name(rec.Key), req.Channel, req.ExpiresAt.Format(time.RFC3339), name(rec.Key))
			})
		},
	}

	approve := &cobra.Command{
		Use:   "approve SKILL CODE",
		Short: "Approve a requested promotion with its code; the skill becomes active",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, rec, err := openRecord(cmd, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			rec, err = s.Quarantine.Approve(cmd.Context(), rec.Key, args[1], actor())
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			n, err := s.Strikes.Reset(cmd.Context(), strikes.Skill{ID: rec.ID, Version: rec.Version, Hash: rec.Hash}, actor(), "promoted")
			if err != nil {
				return withExit(exitSkillFailed, fmt.Errorf("%s is promoted, but its strikes could not be reset: %w", name(rec.Key), err))
			}
			return out(cmd, rec, func(w io.Writer) {
				fmt.Fprintf(w, "%s is %s at %s (%d strikes reset)\n", name(rec.Key), rec.State, rec.ActivePath, n)
			})
		},
	}

	var reason string
	reject := &cobra.Command{
		Use:   "reject SKILL --reason TEXT",
		Short: "Reject a skill for good; it must come back as a new version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if strings.TrimSpace(reason) == "" {
				return withExit(exitSkillBadArgs, errors.New("--reason is required: it goes into the audit trail"))
			}
			s, rec, err := openRecord(cmd, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			rec, err = s.Quarantine.Reject(cmd.Context(), rec.Key, actor(), reason)
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			return out(cmd, rec, func(w io.Writer) { fmt.Fprintf(w, "%s is %s\n", name(rec.Key), rec.State) })
		},
	}
	reject.Flags().StringVar(&reason, "reason", "", "why (required)")

	strikesCmd := &cobra.Command{
		Use:   "strikes SKILL",
		Short: "Show the strikes against a skill's code (under any id or version)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, rec, err := openRecord(cmd, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			act, err := s.Strikes.Active(cmd.Context(), strikes.Skill{ID: rec.ID, Version: rec.Version, Hash: rec.Hash})
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			return out(cmd, act, func(w io.Writer) {
				fmt.Fprintf(w, "%s: %d active strikes\n", name(rec.Key), len(act))
				for _, k := range act {
					exp := "never expires"
					if !k.ExpiresAt.IsZero() {
						exp = "expires " + k.ExpiresAt.Format(time.RFC3339)
					}
					fmt.Fprintf(w, "  #%d %s %s at %s (%s): %s\n", k.Number, k.Type, termText(k.ExceptionType), k.OccurredAt.Format(time.RFC3339), exp, termText(k.Message))
				}
			})
		},
	}

	verify := &cobra.Command{
		Use:   "verify",
		Short: "Verify the quarantine audit chain, every strike's signature and the strike audit chain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open(cmd)
			if err != nil {
				return err
			}
			defer s.Close()
			qh, qerr := s.Quarantine.Verify(cmd.Context())
			sr, serr := s.Strikes.Verify(cmd.Context())
			v := map[string]any{"quarantine_entries": qh.Entries, "strikes": sr.Strikes, "strike_audit_entries": sr.AuditEntries}
			if err := out(cmd, v, func(w io.Writer) {
				fmt.Fprintf(w, "quarantine audit: %d entries %s\n", qh.Entries, okOr(qerr))
				fmt.Fprintf(w, "strikes: %d signatures, %d audit entries %s\n", sr.Strikes, sr.AuditEntries, okOr(serr))
			}); err != nil {
				return err
			}
			if err := errors.Join(qerr, serr); err != nil {
				return withExit(exitSkillFailed, err)
			}
			return nil
		},
	}

	var image string
	run := &cobra.Command{
		Use:   "run SKILL [-- ARGS...]",
		Short: "Run a skill in the sandbox; the outcome counts towards promotion, or as a strike",
		Long: `Run a skill's entry point in a fresh locked-down container (no network, read-only
root, no capabilities, an unprivileged user, the SANDBOX_* limits) through the
sandbox's own socket proxy on TALOS_DOCKER_HOST. A skill that declares network
hosts reaches those only, through an egress proxy Talos runs for the run, and
only when TALOS_HOME/config/web-allowlist.txt approves them. The skill must
have passed its scan. A clean run counts towards promotion; a failure fails the record and is
recorded as a strike of its type (exception, timeout, resource, security).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, rec, err := openRecord(cmd, args[0])
			if err != nil {
				return err
			}
			defer s.Close()
			run, err := s.Run(cmd.Context(), rec, args[1:], actor(), host.RunOptions{Image: image})
			if err != nil {
				return withExit(exitSkillFailed, err)
			}
			rec, res, strike := run.Record, run.Result, run.Strike
			v := map[string]any{"record": rec, "exit_code": res.ExitCode, "stdout": string(res.Stdout), "stderr": string(res.Stderr),
				"truncated": res.Truncated, "verdict": res.Verdict, "duration_ms": res.Duration.Milliseconds(), "strike": strike}
			if err := out(cmd, v, func(w io.Writer) {
				fmt.Fprint(w, termLines(string(res.Stdout)))
				if len(res.Stderr) > 0 {
					fmt.Fprint(cmd.ErrOrStderr(), termLines(string(res.Stderr)))
				}
				fmt.Fprintf(w, "%s: %s in %s (exit %d); now %s, %d clean runs\n", name(rec.Key), verdictText(res), res.Duration.Round(time.Millisecond), res.ExitCode, rec.State, rec.CleanRuns)
				if strike != nil && strike.Recorded {
					fmt.Fprintf(w, "strike #%d (%s), %d active%s\n", strike.Strike.Number, strike.Strike.Type, strike.Active, map[bool]string{true: ": the skill is deprecated", false: ""}[strike.Deprecated])
				}
			}); err != nil {
				return err
			}
			if !res.Verdict.Passed() {
				return withExit(exitSkillFailed, fmt.Errorf("%s failed in the sandbox: %s", name(rec.Key), res.Verdict.Reason))
			}
			return nil
		},
	}
	run.Flags().StringVar(&image, "image", "", "the Python image to run in (default "+sandbox.DefaultImage+"; scripts/services.sh python-image builds one)")

	cmd.AddCommand(add, list, show, scan, run, request, approve, reject, strikesCmd, verify)
	return cmd
}

func okOr(err error) string {
	if err != nil {
		return "BROKEN: " + err.Error()
	}
	return "ok"
}

// resolve finds the record named by ref (host.Skills.Resolve) with the
// CLI's exit codes: an unknown skill 1, an ambiguous name 2.
func resolve(cmd *cobra.Command, s *host.Skills, ref string) (quarantine.Record, error) {
	rec, err := s.Resolve(cmd.Context(), ref)
	if err != nil {
		if strings.Contains(err.Error(), "different content") {
			return rec, withExit(exitSkillBadArgs, err)
		}
		return rec, withExit(exitSkillFailed, err)
	}
	return rec, nil
}

func verdictText(r sandbox.Result) string {
	if r.Verdict.Passed() {
		return "clean run"
	}
	return "failed: " + r.Verdict.Reason
}

// name is the reference of a record: ID@VERSION#first 12 hex digits.
func name(k quarantine.Key) string { return host.SkillName(k) }

// actor names the person at the terminal for the audit trail.
func actor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "user:" + u.Username
	}
	return "user:uid-" + strconv.Itoa(os.Getuid())
}
