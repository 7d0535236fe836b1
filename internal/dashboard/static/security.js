// Security: the lockdown and its unlock, firewall decisions, MCP and skill
// approvals, strikes, and the kill switch (behind a typed confirmation).
"use strict";
(function () {
  const T = window.Talos;
  function fill(id, rows) {
    const tb = document.querySelector("#" + id + " tbody");
    T.clear(tb);
    for (const r of rows) tb.appendChild(T.row(r));
  }
  function skill(s) { return s.id + "@" + s.version + " #" + s.hash; }
  function render(v) {
    const l = v.lockdown || {};
    const st = document.getElementById("lockdown-state");
    const form = document.getElementById("unlock-form");
    if (l.error) {
      st.className = "error";
      T.setText("lockdown-state", "Lockdown state unavailable: " + l.error);
      form.classList.add("hidden");
    } else if (l.locked) {
      st.className = "locked";
      T.setText("lockdown-state", "LOCKED since " + T.fmtTime(l.since) + " by " + (l.by || "?") + ": " + (l.reason || "") +
        (l.code_expires ? " · code expires " + T.fmtTime(l.code_expires) : "") + (l.failed_attempts ? " · " + l.failed_attempts + " failed attempts" : ""));
      form.classList.remove("hidden");
    } else {
      st.className = "";
      T.setText("lockdown-state", "Not locked: chat turns are accepted.");
      form.classList.add("hidden");
    }
    T.setText("decisions-error", v.decisions_error || "");
    fill("decisions", (v.decisions || []).map(function (d) { return [T.fmtTime(d.time), d.event, d.action, d.rules, d.source || "", d.session || ""]; }));
    T.setText("proxy-error", v.proxy_denials_error || "");
    fill("proxy", (v.proxy_denials || []).map(function (p) { return [T.fmtTime(p.time), p.profile, (p.method ? p.method + " " : "") + p.path, p.status || "", (p.code ? p.code + ": " : "") + p.reason]; }));
    T.setText("mcp-error", v.mcp_error || "");
    fill("mcp", (v.mcp || []).map(function (m) { return [m.server, m.reason, m.changes]; }));
    T.setText("promotions-error", v.promotions_error || "");
    fill("promotions", (v.promotions || []).map(function (s) { return [skill(s), s.state, s.scan, s.approval || ""]; }));
    T.setText("strikes-error", v.strikes_error || "");
    fill("strikes", (v.strikes || []).map(function (s) { return [skill(s), s.state, String(s.strikes)]; }));
    T.setText("security-status", "Updated " + new Date().toLocaleTimeString());
  }
  async function load() {
    try {
      render(await T.fetchJSON("/api/security"));
    } catch (e) {
      T.setText("security-status", "Cannot load the security view: " + e.message);
    }
  }
  document.getElementById("unlock-form").addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const input = document.getElementById("unlock-code");
    const r = await T.postJSON("/api/security/unlock", { code: input.value.trim() });
    input.value = "";
    T.setText("unlock-result", r.data.error || r.data.result || ("HTTP " + r.status));
    load();
  });
  const killForm = document.getElementById("kill-form");
  document.getElementById("kill-open").addEventListener("click", function () { killForm.classList.remove("hidden"); });
  document.getElementById("kill-cancel").addEventListener("click", function () { killForm.classList.add("hidden"); });
  killForm.addEventListener("submit", async function (ev) {
    ev.preventDefault();
    const r = await T.postJSON("/api/panic", { reason: document.getElementById("kill-reason").value, confirm: document.getElementById("kill-confirm").value });
    T.setText("kill-result", r.data.error || r.data.result || ("HTTP " + r.status));
    if (r.status === 202) killForm.classList.add("hidden");
  });
  load();
  setInterval(load, 5000);
})();
