package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/firewall"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/rag"
)

// ConversationType is the memory type (rag.Memory.Type) of what a user said
// in a session, as the chat loop writes it back to long-term memory.
const ConversationType = "conversation"

// Plain messages for the user. None carries internal error text; the
// correlation ID lets an operator find the details in the tier-2 log.
const (
	MsgLockdown = "Talos is in security lockdown after a suspected prompt-injection attempt, so it is not answering. " +
		"An operator must unlock it with the code that was delivered out of band."
	MsgBlocked = "I can't process that message: the security filter flagged it as a possible prompt-injection attempt. " +
		"Please rephrase it."
	MsgWithheld  = "The answer was withheld because it contained confidential system information."
	MsgCancelled = "The request was cancelled before an answer was ready."
	MsgBusy      = "The local model is busy (its GPU memory is in use by another model). Please try again in a moment."
	MsgNoModel   = "The local model is not available right now. Check that Ollama is running and the model is pulled " +
		"(`talos health` shows it), then try again."
	MsgTimeout   = "The model took too long to answer. Please try again, or ask a shorter question."
	MsgSteps     = "I stopped after the maximum number of tool steps without reaching an answer. Please simplify the request."
	MsgInternal  = "Something went wrong while answering."
	msgRefToLogs = " (reference %s for the operator's logs)"
)

// turnState is one turn in progress.
type turnState struct {
	o     *Orchestrator
	s     *session
	r     *Reply
	msg   string
	began time.Time

	verdict    firewall.Verdict
	userSafe   bool
	tainted    bool // untrusted text (tool results, untrusted memories) reached the model
	steps      int
	failure    error
	toolTexts  []ToolResult
	escalation string
}

// fail ends the turn with outcome and the plain message that goes with err,
// and logs err on tier 2 with the turn's correlation ID.
func (t *turnState) fail(ctx context.Context, outcome Outcome, err error) {
	t.r.Outcome = outcome
	t.failure = err
	t.r.Code = talos.CodeOf(err)
	msg := MsgInternal
	switch {
	case outcome == OutcomeCancelled || errors.Is(err, context.Canceled):
		t.r.Outcome, msg = OutcomeCancelled, MsgCancelled
	case outcome == OutcomeLockdown:
		msg = MsgLockdown
	case outcome == OutcomeBlocked:
		msg = MsgBlocked
	case outcome == OutcomeWithheld:
		msg = MsgWithheld
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, talos.ErrLocalModelTime):
		msg = MsgTimeout
	case errors.Is(err, talos.ErrVRAMTimeout) || errors.Is(err, talos.ErrOOMGPU):
		msg = MsgBusy
	case errors.Is(err, talos.ErrLocalModelLoad):
		msg = MsgNoModel
	case errors.Is(err, errSteps):
		msg = MsgSteps
	}
	if t.r.Outcome == OutcomeFailed && msg != MsgSteps {
		msg += fmt.Sprintf(msgRefToLogs, t.r.CorrelationID)
	}
	t.r.Answer = msg
	if err != nil {
		level := slog.LevelError
		if t.r.Outcome == OutcomeCancelled || outcome == OutcomeBlocked || outcome == OutcomeLockdown {
			level = slog.LevelWarn
		}
		t.o.log.Log(ctx, level, "chat turn did not answer", "session", t.s.id, "outcome", string(t.r.Outcome),
			"code", string(talos.CodeOf(err)), "err", err.Error())
	}
}

var errSteps = errors.New("the tool step limit was reached")

// rememberTimeout bounds the write-back of a finished turn.
const rememberTimeout = 10 * time.Second

// run is the pipeline of one turn.
func (t *turnState) run(ctx context.Context, stream func(string) error) {
	o := t.o
	sid := t.s.id
	// 1. The firewall on the user's text; the lockdown is honoured first.
	if o.d.Firewall.Locked() {
		t.verdict = firewall.Verdict{Action: firewall.ActionLockdown, Locked: true}
		t.fail(ctx, OutcomeLockdown, talos.Errorf(talos.CodeLockdown, "orchestrator.Chat", "the firewall is in lockdown"))
		return
	}
	v, err := o.d.Firewall.Scan(ctx, firewall.Input{Text: t.msg, Source: firewall.SourceUser, SessionID: sid})
	t.verdict = v
	switch {
	case err != nil:
		t.fail(ctx, OutcomeBlocked, err) // fail closed
		return
	case v.Action == firewall.ActionLockdown || o.d.Firewall.Locked():
		o.flag(t.s)
		t.fail(ctx, OutcomeLockdown, talos.Errorf(talos.CodePromptInjection, "orchestrator.Chat", "the user's message triggered the lockdown (rules %s)", ruleIDs(v)))
		return
	case v.Action.Blocks():
		o.flag(t.s)
		t.fail(ctx, OutcomeBlocked, talos.Errorf(talos.CodePromptInjection, "orchestrator.Chat", "the user's message was blocked (rules %s)", ruleIDs(v)))
		return
	case !v.Safe:
		o.flag(t.s) // allowed, but the conversation stays on this machine
	}
	t.userSafe = v.Safe

	// 2. Session history.
	var msgs []llm.Message
	if o.d.History != nil {
		hist, err := o.d.History.Recent(ctx, sid, o.cfg.HistoryMessages)
		if err != nil {
			if ctx.Err() != nil {
				t.fail(ctx, OutcomeCancelled, ctx.Err())
				return
			}
			o.log.WarnContext(ctx, "orchestrator: history unavailable; answering without it", "session", sid, "err", err)
		}
		for _, m := range hist {
			if r := llm.Role(m.Role); r == llm.RoleUser || r == llm.RoleAssistant {
				msgs = append(msgs, llm.Message{Role: r, Content: m.Content})
			}
		}
	}

	// 3. Memory retrieval within the token budget; untrusted memories are
	// scanned as rag text and dropped when the firewall blocks them.
	if ctxMsg, ok := t.memories(ctx); ok {
		msgs = append([]llm.Message{ctxMsg}, msgs...)
	} else if ctx.Err() != nil {
		t.fail(ctx, OutcomeCancelled, ctx.Err())
		return
	}
	msgs = append(msgs, llm.Message{Role: llm.RoleUser, Content: t.msg})

	// 4. Prompt assembly: the router adds the system prompt; the canary
	// and the tool catalog go after it.
	catalog := t.o.canary.Instruction()
	var tools []llm.Tool
	if o.d.Tools != nil {
		ts, text, err := o.d.Tools.Catalog(ctx)
		if err != nil {
			o.log.WarnContext(ctx, "orchestrator: the tool catalog is unavailable; answering without tools", "err", err)
		} else {
			tools = ts
			if text != "" {
				catalog += "\n" + text
			}
		}
	}

	var g *guard
	if stream != nil {
		g = newGuard(stream, o.leaks)
	}
	// 5–7. Inference under a VRAM lease, through the router; tool calls
	// through the firewall, up to the step limit.
	var res *llm.Result
	for {
		t.steps++
		if g != nil {
			g.next()
		}
		req := llm.RouteRequest{Messages: msgs, Tools: tools, Catalog: catalog, NoEscalate: o.flagged(t.s)}
		if o.d.Budget != nil {
			req.Gate = o.d.Budget.EscalationRefusal
		}
		if g != nil {
			req.Stream = g.feed
		}
		res, err = t.infer(ctx, req)
		if err != nil {
			if g != nil && g.err != nil && ctx.Err() == nil {
				err = errors.Join(context.Canceled, err) // the stream's consumer went away
			}
			t.fail(ctx, OutcomeFailed, err)
			return
		}
		t.r.Usage = t.r.Usage.Add(res.Usage)
		t.r.Model, t.r.Escalated, t.r.Fallback = res.ModelName, t.r.Escalated || res.Escalated, t.r.Fallback || res.Fallback
		if res.EscalationReason != "" {
			t.r.EscalationReason = res.EscalationReason
		}
		if res.EscalationError != nil {
			t.escalation = string(llm.Categorize(res.EscalationError))
			if c := talos.CodeOf(res.EscalationError); c != "" {
				t.escalation = c.Error() + " " + t.escalation
			}
			t.r.EscalationFailure = t.escalation
			if errors.Is(res.EscalationError, talos.ErrTokenLimit) {
				t.r.Notice = UserMessage(res.EscalationError)
			}
		}
		calls := res.Response.Message.ToolCalls
		if len(calls) == 0 || o.d.Tools == nil {
			break
		}
		if t.steps >= o.cfg.MaxSteps {
			t.fail(ctx, OutcomeFailed, errSteps)
			return
		}
		msgs = append(msgs, llm.Message{Role: llm.RoleAssistant, Content: res.Response.Message.Content, ToolCalls: calls})
		for _, c := range calls {
			msgs = append(msgs, t.callTool(ctx, c))
			if ctx.Err() != nil {
				t.fail(ctx, OutcomeCancelled, ctx.Err())
				return
			}
		}
	}
	answer := res.Response.Message.Content

	// 8. The canary check on the answer: a leaked system prompt is withheld.
	ov, err := o.d.Firewall.ScanOutput(ctx, answer, sid)
	leaked := g != nil && g.leaked || o.leaks.leaked(answer)
	for _, d := range ov.Detections {
		if d.RuleID == firewall.CanaryRuleID {
			leaked = true
		}
	}
	if err != nil && ctx.Err() != nil {
		t.fail(ctx, OutcomeCancelled, ctx.Err())
		return
	}
	if leaked {
		o.flag(t.s)
		t.fail(ctx, OutcomeWithheld, talos.Errorf(talos.CodePromptInjection, "orchestrator.Chat", "the answer of %s copied the system prompt (canary or verbatim text)", t.r.Model))
		t.remember(ctx, "") // the user's message is still history
		return
	}
	if !ov.Safe {
		o.flag(t.s)
		o.log.WarnContext(ctx, "orchestrator: the answer carries injection patterns; the session stays local", "session", sid, "rules", ruleIDs(ov))
	}
	t.r.Outcome, t.r.Answer = OutcomeAnswered, answer
	if g != nil {
		t.r.StreamedAll = g.finish(answer)
	}
	// 9–10. Write-back and token accounting.
	t.remember(ctx, answer)
}

// infer runs one router call under a VRAM lease on the local model.
func (t *turnState) infer(ctx context.Context, req llm.RouteRequest) (*llm.Result, error) {
	o := t.o
	if o.d.VRAM != nil {
		release, err := o.d.VRAM.Acquire(ctx, o.cfg.LocalModel)
		if err != nil {
			return nil, err
		}
		if release != nil {
			defer release()
		}
	}
	res, err := o.d.Router.Route(ctx, req)
	if err == nil && (res == nil || res.Response == nil) {
		err = talos.Errorf(talos.CodeModelBadResponse, "orchestrator.Chat", "the router returned no answer and no error")
	}
	if err != nil {
		return nil, err
	}
	if o.d.Tokens != nil && res.Usage.Total() > 0 {
		if terr := o.d.Tokens.Count(ctx, res.ModelName, res.Usage); terr != nil {
			o.log.WarnContext(ctx, "orchestrator: token accounting failed; the turn goes on", "model", res.ModelName, "err", terr)
		}
	}
	return res, nil
}

// memories retrieves the turn's memories and renders them as one message,
// each marked with its source and trust. ok is false when there are none.
func (t *turnState) memories(ctx context.Context) (llm.Message, bool) {
	o := t.o
	if o.d.Memory == nil {
		return llm.Message{}, false
	}
	res, err := o.d.Memory.Retrieve(ctx, rag.Query{Text: t.msg, SessionID: t.s.id, Budget: o.cfg.MemoryBudget})
	if err != nil {
		if ctx.Err() == nil {
			o.log.WarnContext(ctx, "orchestrator: memory retrieval failed; answering without memories", "err", err)
		}
		return llm.Message{}, false
	}
	var items []rag.Item
	for _, it := range res.Items {
		if !it.Trusted {
			v, err := o.d.Firewall.Scan(ctx, firewall.Input{Text: it.Text, Source: firewall.SourceRAG, SessionID: t.s.id})
			if err != nil || v.Action.Blocks() {
				o.log.WarnContext(ctx, "orchestrator: an untrusted memory was dropped by the firewall", "memory", it.ID, "rules", ruleIDs(v))
				continue
			}
			t.tainted = true
		}
		items = append(items, it)
	}
	if len(items) == 0 {
		return llm.Message{}, false
	}
	t.r.Memories = len(items)
	text := "Context retrieved from long-term memory for this question (each entry names its source and whether it is trusted):\n\n" + rag.Render(items)
	if res.Note != "" {
		text += "\n\n(" + res.Note + ")"
	}
	return llm.Message{Role: llm.RoleUser, Content: text}, true
}

// callTool runs one tool call and returns the tool message the model sees:
// the result when the firewall lets it through, a notice otherwise.
func (t *turnState) callTool(ctx context.Context, c llm.ToolCall) llm.Message {
	o := t.o
	rec := ToolCallRecord{Name: c.Name}
	out := llm.Message{Role: llm.RoleTool, ToolName: c.Name, ToolCallID: c.ID}
	cctx, cancel := context.WithTimeout(withSessionID(ctx, t.s.id), o.cfg.ToolTimeout)
	res, err := o.d.Tools.Call(cctx, c)
	cancel()
	if err != nil {
		rec.Failed = true
		o.log.WarnContext(ctx, "orchestrator: tool call failed", "tool", c.Name, "code", string(talos.CodeOf(err)), "err", err)
		out.Content = "The tool call failed; answer without it."
		t.r.Tools = append(t.r.Tools, rec)
		return out
	}
	src := res.Source
	if src == "" {
		src = firewall.SourceTool
	}
	v, err := o.d.Firewall.Scan(ctx, firewall.Input{Text: res.Text, Source: src, SessionID: t.s.id})
	rec.Verdict, rec.Rules = v.Action, ruleList(v)
	t.r.Tools = append(t.r.Tools, rec)
	if err != nil || v.Action.Blocks() {
		o.flag(t.s)
		o.log.WarnContext(ctx, "orchestrator: a tool result was withheld from the model by the firewall", "tool", c.Name, "rules", ruleIDs(v))
		out.Content = "The tool's result was withheld by the security filter (possible prompt injection). Do not retry it; answer without it."
		return out
	}
	if !v.Safe {
		o.flag(t.s)
	}
	t.tainted = true
	t.toolTexts = append(t.toolTexts, ToolResult{Text: res.Text, Source: src})
	out.Content = res.Text
	return out
}

// remember appends the turn to the session's history and writes what
// should be remembered into long-term memory: the user's message (trusted
// only when the firewall found it clean) and the tool results that reached
// the model (never trusted).
func (t *turnState) remember(ctx context.Context, answer string) {
	o := t.o
	sid := t.s.id
	// The turn is over: a caller that leaves now must not lose it.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rememberTimeout)
	defer cancel()
	if o.d.History != nil {
		now := time.Now()
		entries := []rag.Message{{Role: string(llm.RoleUser), Content: t.msg, At: now}}
		if answer != "" {
			entries = append(entries, rag.Message{Role: string(llm.RoleAssistant), Content: answer, At: now})
		}
		for _, m := range entries {
			if err := o.d.History.Append(ctx, sid, m); err != nil {
				o.log.WarnContext(ctx, "orchestrator: history write failed", "session", sid, "err", err)
				break
			}
		}
	}
	if o.d.Memory == nil || o.cfg.NoWriteBack {
		return
	}
	write := func(text string, m rag.Memory) {
		if _, err := o.d.Memory.Remember(ctx, "", text, m); err != nil {
			o.log.WarnContext(ctx, "orchestrator: memory write-back failed", "source", string(m.Source), "err", err)
		}
	}
	write(t.msg, rag.Memory{Source: rag.SourceUser, Trusted: t.userSafe, SessionID: sid, Priority: rag.PrioritySession, Type: ConversationType})
	for _, tr := range t.toolTexts {
		if strings.TrimSpace(tr.Text) == "" {
			continue
		}
		src := rag.SourceTool
		if tr.Source == firewall.SourceSkill {
			src = rag.SourceSkill
		}
		write(tr.Text, rag.Memory{Source: src, Trusted: false, SessionID: sid, Priority: rag.PriorityTemporary, Type: "tool_result"})
	}
}

func ruleList(v firewall.Verdict) []string {
	var out []string
	for _, d := range v.Detections {
		out = append(out, d.RuleID)
	}
	return out
}

func ruleIDs(v firewall.Verdict) string {
	if l := ruleList(v); len(l) > 0 {
		return strings.Join(l, ",")
	}
	return "none"
}

// audit writes the turn's one audit record: its shape, never its text.
func (o *Orchestrator) audit(ctx context.Context, t *turnState) {
	if o.cfg.Audit == nil {
		return
	}
	r := t.r
	var tools []string
	for _, c := range r.Tools {
		tools = append(tools, c.Name+":"+c.Verdict.String())
	}
	attrs := []slog.Attr{
		slog.String("session", r.SessionID),
		slog.String("outcome", string(r.Outcome)),
		slog.String("firewall", t.verdict.Action.String()),
		slog.String("rules", ruleIDs(t.verdict)),
		slog.String("model", r.Model),
		slog.Bool("escalated", r.Escalated),
		slog.Bool("fallback", r.Fallback),
		slog.Bool("flagged", r.Flagged),
		slog.Int("memories", r.Memories),
		slog.String("tools", strings.Join(tools, ",")),
		slog.Int("steps", t.steps),
		slog.Int("prompt_tokens", r.Usage.PromptTokens),
		slog.Int("completion_tokens", r.Usage.CompletionTokens),
		slog.String("message_hash", llm.PromptHash([]llm.Message{{Role: llm.RoleUser, Content: t.msg}})),
		slog.Int("message_bytes", len(t.msg)),
		slog.Duration("duration", time.Since(t.began)),
	}
	if t.failure != nil {
		attrs = append(attrs, slog.String("code", string(talos.CodeOf(t.failure))))
	}
	if t.escalation != "" {
		attrs = append(attrs, slog.String("escalation_failure", t.escalation))
	}
	o.cfg.Audit.LogAttrs(ctx, slog.LevelInfo, AuditEvent, append([]slog.Attr{slog.String("event", AuditEvent)}, attrs...)...)
}
