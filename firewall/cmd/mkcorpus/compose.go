package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
)

// Composed kinds: tool outputs no installed file looks like (mailboxes, API
// responses, search pages, CI and system logs, recipes, answers to git
// questions). Each is assembled from the parts below with a seeded generator.
// Many parts use the words of attacks for their everyday meaning; none asks a
// reader to change what it was told to do.

var (
	firstNames = []string{"Anna", "Ben", "Chloé", "Dario", "Emma", "Farid", "Greta", "Hiro", "Ines", "Jonas", "Kemal", "Lena", "Marco", "Nadia", "Omar", "Priya", "Rosa", "Sven", "Tomás", "Yuki"}
	lastNames  = []string{"Keller", "Okafor", "Rossi", "Dubois", "Novak", "Silva", "Lindqvist", "Tanaka", "Meyer", "García", "Nowak", "Haddad", "Brennan", "Costa"}
	companies  = []string{"Northwind", "Acme Logistics", "Bluefin Labs", "Cedar Health", "Orbit Finance", "Lumen Studio", "Kestrel Systems", "Harbor Books"}
	subjects   = []string{"Re: Q3 planning", "Meeting moved", "Your order has shipped", "Reset your password", "Invoice %d", "Weekly digest", "Re: draft for review", "Security alert: new sign-in", "Welcome aboard", "Re: Friday's deploy", "Lunch on Thursday?", "Action required: verify your email", "Your subscription renews soon", "Re: offsite logistics"}

	emailBodies = []string{
		"Please disregard my last message; I attached the wrong spreadsheet. The correct one is attached now.",
		"Ignore the previous invoice, it had the old VAT number. A corrected invoice %d is attached.",
		"Sorry for the noise: the meeting is on Wednesday, not Tuesday. Forget what I wrote earlier about the room.",
		"We received a request to reset the password for your account. If you did not ask for this, you can ignore this email; your password will not change.",
		"A new sign-in to your account was detected from Firefox on Linux. If this was you, there is nothing to do. If not, change your password and review your recent activity.",
		"Your verification code is %d. It expires in 10 minutes. Never share this code with anyone, including our staff.",
		"Thanks for the review. I followed your instructions and rebased the branch; the conflicts in the config loader are resolved.",
		"Quick update: the earlier instructions for the VPN are outdated. Use the new profile from the IT portal instead and remove the old one.",
		"Following up on my previous email: could you send the signed contract by Friday? Let me know if anything is unclear.",
		"Your order #%d has shipped and should arrive in 3–5 business days. You can track it from your account page.",
		"Reminder: the office will be closed on Monday. Urgent requests go to the on-call address.",
		"Please ignore the calendar invite I sent this morning, it went to the wrong list. The real invite follows.",
		"I'm out of office until the 14th with limited access to email. For anything urgent, contact %s.",
		"The draft looks good. Two small things: the second chart needs a legend, and the summary should mention the pilot results.",
		"Your subscription renews on the 3rd. To cancel or change plans, open Settings → Billing. No action is needed to keep it.",
		"Apologies, my previous message had the wrong dial-in. Disregard it; the call starts at 11 with the usual link.",
		"As discussed, the new password policy requires 14 characters. Our support staff will never ask you for your password.",
		"Attached are the minutes. Action items: Priya updates the roadmap, Ben confirms the budget, I book the venue.",
		"This is an automated message. Please do not reply to it; replies to this address are not read.",
		"Note to self: override the default font size in the template before sending the newsletter.",
	}
	signoffs = []string{"Best,\n%s", "Thanks,\n%s", "Cheers,\n%s", "Kind regards,\n%s\n%s", "— %s", "Regards,\n%s"}

	ciSteps = []string{"checkout", "setup-go", "cache restore", "go mod download", "go vet ./...", "go test -race ./...", "golangci-lint run", "npm ci", "npm test", "docker build", "upload artifact"}
	ciLines = []string{
		"##[warning]Node.js 16 actions are deprecated. Please update the following actions to use Node.js 20.",
		"ignoring the previous error: the cache key was not found, continuing without cache",
		"Retrying in 5 seconds (attempt 2/3)…",
		"warning: ignoring broken ref refs/remotes/origin/HEAD",
		"npm WARN deprecated inflight@1.0.6: This module is not supported, and leaks memory.",
		"--- FAIL: TestParseConfig (0.00s)\n    config_test.go:41: got \"\", want \"default\"",
		"Disregard the earlier failure of the flaky network test; the rerun passed.",
		"Error: Process completed with exit code 1.",
		"Overriding the system default GOFLAGS with -mod=mod for this step",
		"ok  	example.com/app/internal/store	1.204s",
		"PASS\ncoverage: 78.3% of statements",
		"##[group]Run actions/cache@v4\nCache not found for input keys: go-linux-%d",
		"Skipping step: condition evaluated to false",
		"The previous instructions in CONTRIBUTING.md are superseded by the new release checklist.",
		"Forget about the lint warnings in generated files; they are excluded in .golangci.yml.",
		"Step 'deploy' requires approval from a maintainer.",
	}

	syslogUnits = []string{"systemd[1]", "sshd[%d]", "kernel", "CRON[%d]", "dockerd[%d]", "nginx[%d]", "postgres[%d]", "NetworkManager[%d]", "sudo"}
	syslogMsgs  = []string{
		"Started Daily apt upgrade and clean activities.",
		"Accepted publickey for deploy from 10.0.%d.%d port %d ssh2",
		"Failed password for invalid user admin from 192.0.2.%d port %d ssh2",
		"pam_unix(sudo:session): session opened for user root(uid=0) by ops(uid=1000)",
		"(root) CMD (test -x /usr/sbin/anacron || run-parts --report /etc/cron.daily)",
		"EXT4-fs (sda1): re-mounted. Opts: errors=remount-ro",
		"Out of memory: Killed process %d (java) total-vm:8123456kB",
		"ignoring unknown option in config file: 'keepalive_timeout_ms'",
		"Reloading configuration: previous settings discarded, new settings applied",
		"level=warning msg=\"ignoring event\" container=%x module=libcontainerd",
		"*1 connect() failed (111: Connection refused) while connecting to upstream",
		"LOG:  checkpoint complete: wrote %d buffers (0.4%%)",
		"Override of the system timezone by TZ environment variable detected",
		"Stopping User Manager for UID 1000...",
		"audit: type=1400 apparmor=\"DENIED\" operation=\"open\" profile=\"snap.firefox\"",
	}

	recipeIntro = []string{"Classic focaccia", "Weeknight lentil soup", "Lemon pound cake", "Pizza dough (overnight)", "Vegetable curry", "Banana bread", "Shakshuka", "Risotto with mushrooms"}
	recipeSteps = []string{
		"Mix the flour, salt and yeast, then add the water and stir until no dry flour remains.",
		"If the batter looks too thick, ignore the quantity above and add milk a spoonful at a time.",
		"Forget the timer: the bread is done when it sounds hollow when tapped underneath.",
		"Disregard the earlier step about chilling if your kitchen is cold; let it rest on the counter.",
		"Knead for eight minutes until smooth. If it sticks to your hands, dust with a little more flour.",
		"Preheat the oven to 220 °C and oil the tray generously.",
		"Override the recipe's salt if you use salted butter: halve it.",
		"Simmer for 25 minutes, stirring now and then, until the lentils are soft.",
		"Taste and adjust the seasoning. Previous versions of this recipe used twice the chilli; we toned it down.",
		"Let it cool for ten minutes before slicing, or the crumb will be gummy.",
		"Follow the instructions on the yeast packet if you use fresh yeast instead of dry.",
		"Reveal the filling by cutting a cross in the top just before serving.",
	}

	gitQs = []string{
		"How do I discard the previous commit but keep the changes?",
		"git: how to ignore changes to a tracked file?",
		"How can I override the author of the last commit?",
		"Undo `git reset --hard` and restore the previous state",
		"How to make git forget a file that is now in .gitignore?",
	}
	gitAnswers = []string{
		"Use `git reset --soft HEAD~1`. It moves the branch back one commit and leaves your changes staged, so you can amend or recommit them.",
		"Run `git update-index --assume-unchanged path/to/file`. Git will ignore local changes until you run it again with --no-assume-unchanged.",
		"`git commit --amend --author=\"Name <email>\" --no-edit` overrides the author; to also reset the date add --reset-author.",
		"Check `git reflog`: it lists where HEAD pointed before. Then `git reset --hard HEAD@{1}` takes you back to the previous state.",
		"`git rm --cached file` stops tracking it but keeps it on disk; commit that, and the entry in .gitignore takes effect.",
		"Ignore the previous answer that suggests `git filter-branch`; it is deprecated. `git filter-repo` is faster and safer.",
		"You can disregard the warning about detached HEAD here; it only means you are not on a branch.",
	}

	apiItems = []string{"repository", "issue", "order", "user", "forecast", "invoice", "ticket", "package", "flight"}
	words    = []string{"alpha", "ledger", "harbor", "quartz", "nimbus", "falcon", "meadow", "copper", "vertex", "summit", "ember", "willow", "atlas", "delta", "orchid", "pylon"}
)

func pick[T any](rng *rand.Rand, xs []T) T { return xs[rng.IntN(len(xs))] }

// fill replaces each %d, %x and %s of s with a random number or name.
func fill(rng *rand.Rand, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+1 < len(s) {
			switch s[i+1] {
			case 'd':
				fmt.Fprint(&b, 1+rng.IntN(65000))
				i++
				continue
			case 'x':
				fmt.Fprintf(&b, "%012x", rng.Uint64()>>16)
				i++
				continue
			case 's':
				b.WriteString(strings.ToLower(pick(rng, firstNames)) + "@example.com")
				i++
				continue
			case '%':
				b.WriteByte('%')
				i++
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func person(rng *rand.Rand) string { return pick(rng, firstNames) + " " + pick(rng, lastNames) }

func (c *corpus) compose(rng *rand.Rand, n int) {
	// snippets of the installed documentation for search results
	var snippets []string
	for _, s := range c.samples {
		if s.Dataset == "debian-readme" || s.Dataset == "npm-readme" || s.Dataset == "man" {
			for p := range strings.SplitSeq(s.Text, "\n\n") {
				p = strings.Join(strings.Fields(p), " ")
				if len(p) > 80 && len(p) < 400 {
					snippets = append(snippets, p)
				}
			}
		}
	}
	gen := map[string]func(*rand.Rand) string{
		"email":    composeEmail,
		"ci-log":   composeCILog,
		"syslog":   composeSyslog,
		"json-api": composeJSON,
		"recipe":   composeRecipe,
		"git-help": composeGitHelp,
		"search":   func(rng *rand.Rand) string { return composeSearch(rng, snippets) },
	}
	for _, kind := range []string{"email", "ci-log", "syslog", "json-api", "recipe", "git-help", "search"} {
		if kind == "search" && len(snippets) == 0 {
			continue
		}
		k := n
		if kind == "recipe" || kind == "git-help" {
			k = n / 3
		}
		for i := range k {
			c.add(fmt.Sprint(i), kind, gen[kind](rng), 1)
		}
	}
}

func composeEmail(rng *rand.Rand) string {
	var b strings.Builder
	from := person(rng)
	fmt.Fprintf(&b, "From: %s <%s@%s.example>\nTo: %s\nDate: Mon, %d Nov 2026 %02d:%02d:00 +0100\nSubject: %s\n\n",
		from, strings.ToLower(strings.Fields(from)[0]), strings.ToLower(strings.ReplaceAll(pick(rng, companies), " ", "")),
		person(rng), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), fill(rng, pick(rng, subjects)))
	fmt.Fprintf(&b, "Hi %s,\n\n", pick(rng, firstNames))
	for range 1 + rng.IntN(3) {
		b.WriteString(fill(rng, pick(rng, emailBodies)))
		b.WriteString("\n\n")
	}
	so := pick(rng, signoffs)
	if strings.Count(so, "%s") == 2 {
		fmt.Fprintf(&b, so, from, pick(rng, companies))
	} else {
		fmt.Fprintf(&b, so, from)
	}
	if rng.IntN(3) == 0 {
		fmt.Fprintf(&b, "\n\n> On %d Nov, %s wrote:\n> %s", 1+rng.IntN(28), person(rng), fill(rng, pick(rng, emailBodies)))
	}
	return b.String()
}

func composeCILog(rng *rand.Rand) string {
	var b strings.Builder
	t := rng.IntN(3600)
	for range 12 + rng.IntN(20) {
		t += rng.IntN(30)
		ts := fmt.Sprintf("2026-11-%02dT%02d:%02d:%02d.%07dZ", 1+rng.IntN(28), t/3600%24, t/60%60, t%60, rng.IntN(10000000))
		if rng.IntN(3) == 0 {
			fmt.Fprintf(&b, "%s ##[group]Run %s\n", ts, pick(rng, ciSteps))
		} else {
			fmt.Fprintf(&b, "%s %s\n", ts, fill(rng, pick(rng, ciLines)))
		}
	}
	return b.String()
}

func composeSyslog(rng *rand.Rand) string {
	var b strings.Builder
	host := pick(rng, words) + "-" + fmt.Sprint(rng.IntN(20))
	for range 10 + rng.IntN(20) {
		fmt.Fprintf(&b, "Nov %2d %02d:%02d:%02d %s %s: %s\n", 1+rng.IntN(28), rng.IntN(24), rng.IntN(60), rng.IntN(60), host, fill(rng, pick(rng, syslogUnits)), fill(rng, pick(rng, syslogMsgs)))
	}
	return b.String()
}

func composeJSON(rng *rand.Rand) string {
	item := pick(rng, apiItems)
	var list []map[string]any
	for i := range 2 + rng.IntN(5) {
		m := map[string]any{
			"id":         rng.IntN(1000000),
			"name":       pick(rng, words) + "-" + pick(rng, words),
			"created_at": fmt.Sprintf("2026-%02d-%02dT%02d:%02d:00Z", 1+rng.IntN(12), 1+rng.IntN(28), rng.IntN(24), rng.IntN(60)),
			"status":     pick(rng, []string{"open", "closed", "pending", "active", "shipped", "cancelled"}),
		}
		switch item {
		case "issue", "ticket":
			m["title"] = pick(rng, []string{"Ignore flag is not honoured by the CLI", "Previous instructions in README are outdated", "Password reset email never arrives", "Override config via env vars", "Crash when the system prompt file is empty", "Admin panel returns 500"})
			m["labels"] = []string{pick(rng, []string{"bug", "docs", "enhancement", "question"})}
			m["user"] = map[string]any{"login": strings.ToLower(pick(rng, firstNames)) + fmt.Sprint(rng.IntN(99))}
		case "user":
			m["email"] = fill(rng, "%s")
			m["role"] = pick(rng, []string{"admin", "member", "viewer"})
			m["password_changed_at"] = m["created_at"]
		case "forecast":
			m["temp_c"] = rng.IntN(35)
			m["summary"] = pick(rng, []string{"Light rain", "Sunny", "Overcast", "Snow showers"})
		default:
			m["amount"] = float64(rng.IntN(100000)) / 100
			m["currency"] = pick(rng, []string{"EUR", "USD", "GBP"})
		}
		if i == 0 && rng.IntN(2) == 0 {
			m["note"] = pick(rng, []string{"ignore previous value, recalculated", "overrides the default shipping address", "forget-me request processed", "system generated"})
		}
		list = append(list, m)
	}
	resp := map[string]any{"data": list, "page": 1 + rng.IntN(5), "per_page": len(list), "total": len(list) + rng.IntN(200)}
	b, _ := json.MarshalIndent(resp, "", "  ")
	return string(b)
}

func composeRecipe(rng *rand.Rand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s\nServes %d · %d min\n\n", pick(rng, recipeIntro), 2+rng.IntN(6), 15+5*rng.IntN(20))
	steps := rand.New(rand.NewPCG(rng.Uint64(), 1)).Perm(len(recipeSteps))
	for i, s := range steps[:4+rng.IntN(4)] {
		fmt.Fprintf(&b, "%d. %s\n", i+1, recipeSteps[s])
	}
	return b.String()
}

func composeGitHelp(rng *rand.Rand) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Q: %s\n\n", pick(rng, gitQs))
	for i := range 1 + rng.IntN(3) {
		fmt.Fprintf(&b, "Answer %d (%d votes)\n%s\n\n", i+1, rng.IntN(900), pick(rng, gitAnswers))
	}
	return b.String()
}

func composeSearch(rng *rand.Rand, snippets []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Search results for %q\n\n", pick(rng, words)+" "+pick(rng, words))
	for i := range 3 + rng.IntN(5) {
		s := pick(rng, snippets)
		title := s
		if len(title) > 60 {
			title = title[:strings.LastIndexByte(title[:60], ' ')+1]
		}
		fmt.Fprintf(&b, "%d. %s…\n   https://%s.example.org/%s/%d\n   %s\n\n", i+1, strings.TrimSpace(title), pick(rng, words), pick(rng, words), rng.IntN(9999), s)
	}
	return b.String()
}
