// The chat page: POST /api/v1/chat with Accept: text/event-stream, the
// answer streamed token by token as text; abort cancels the request.
"use strict";
(function () {
  const T = window.Talos;
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const send = document.getElementById("chat-send");
  const abortBtn = document.getElementById("chat-abort");
  const transcript = document.getElementById("transcript");
  let session = "";
  let ctrl = null;

  function bubble(who, text) {
    const div = T.el("div", undefined, "msg msg-" + who);
    div.appendChild(T.el("div", who === "user" ? "You" : "Talos", "who"));
    const body = T.el("div", text, "text");
    div.appendChild(body);
    transcript.appendChild(div);
    div.scrollIntoView({ block: "end" });
    return { div, body };
  }

  // parseEvents splits buf at blank lines; it returns the complete events
  // and what is left over.
  function parseEvents(buf) {
    const events = [];
    buf = buf.replace(/\r\n?/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = c < 0 ? line : line.slice(0, c);
        let value = c < 0 ? "" : line.slice(c + 1);
        if (value.startsWith(" ")) value = value.slice(1);
        if (field === "event") name = value;
        else if (field === "data") data.push(value);
      }
      if (data.length) events.push({ name, data: data.join("\n") });
    }
    return { events, rest: buf };
  }

  function finish(b, reply) {
    if (reply.answer !== undefined && b.body.textContent !== reply.answer) b.body.textContent = reply.answer;
    session = reply.session_id || session;
    T.setText("chat-session", session ? "session " + session : "");
    const meta = [];
    if (reply.model) meta.push(reply.model);
    if (reply.outcome) meta.push(reply.outcome);
    if (reply.fallback) meta.push("local fallback");
    if (reply.memories) meta.push(reply.memories + " memories");
    for (const t of reply.tools || []) {
      meta.push("tool " + t.name + ": " + t.verdict + (t.rules && t.rules.length ? " [" + t.rules.join(", ") + "]" : "") + (t.failed ? " (failed)" : ""));
    }
    if (reply.correlation_id) meta.push("id " + reply.correlation_id);
    b.div.appendChild(T.el("div", meta.join(" · "), "meta"));
  }

  async function turn(message) {
    bubble("user", message);
    const b = bubble("talos", "");
    ctrl = new AbortController();
    send.disabled = true;
    abortBtn.disabled = false;
    try {
      const r = await fetch("/api/v1/chat", {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "text/event-stream", "X-CSRF-Token": await T.token() },
        body: JSON.stringify(session ? { session_id: session, message } : { message }),
        signal: ctrl.signal,
      });
      if (!r.ok) {
        let msg = "HTTP " + r.status;
        try { msg = (await r.json()).error || msg; } catch (e) { /* not JSON */ }
        if (r.status === 404) session = "";
        b.body.textContent = msg;
        b.div.classList.add("msg-error");
        return;
      }
      const reader = r.body.getReader();
      const dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        const p = parseEvents(buf);
        buf = p.rest;
        for (const ev of p.events) {
          const d = JSON.parse(ev.data);
          if (ev.name === "token") b.body.textContent += d.text;
          else if (ev.name === "done") finish(b, d);
        }
      }
    } catch (e) {
      b.div.appendChild(T.el("div", e.name === "AbortError" ? "aborted" : "error: " + e.message, "meta"));
    } finally {
      ctrl = null;
      send.disabled = false;
      abortBtn.disabled = true;
    }
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    const m = input.value.trim();
    if (!m || ctrl) return;
    input.value = "";
    turn(m);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey) {
      ev.preventDefault();
      form.requestSubmit();
    }
  });
  abortBtn.addEventListener("click", function () { if (ctrl) ctrl.abort(); });
  document.getElementById("chat-new").addEventListener("click", function () {
    session = "";
    T.setText("chat-session", "");
    T.clear(transcript);
  });
})();
