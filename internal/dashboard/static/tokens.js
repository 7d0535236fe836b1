// Tokens per model and day, refreshed every 5 s.
"use strict";
(function () {
  const T = window.Talos;
  // summary says today's total against the daily limit, and whose counts
  // these are.
  function summary(v) {
    if (!v.today) return "";
    const parts = ["Today (" + v.today + ", UTC): " + v.daily_total +
      (v.daily_limit ? " of " + v.daily_limit + " tokens" : " tokens, no daily limit")];
    if (v.escalation_refused) parts.push("the daily limit is reached, so nothing is escalated to the cloud model until the next UTC day");
    if (v.source === "redis") parts.push("counted across every process sharing the Redis");
    else if (v.source === "memory") parts.push("counted by this process only");
    return parts.join("; ") + ".";
  }
  async function load() {
    try {
      const v = await T.fetchJSON("/api/tokens");
      T.setText("tokens-error", v.error || (v.rows.length ? "" : "No tokens counted yet."));
      T.setText("tokens-summary", summary(v));
      T.setText("tokens-note", v.note || "");
      const tb = document.querySelector("#tokens tbody");
      T.clear(tb);
      for (const r of v.rows || []) {
        const total = r.total || r.prompt + r.completion;
        tb.appendChild(T.row([r.day, r.model, r.split ? String(r.prompt) : "–", r.split ? String(r.completion) : "–", String(total)]));
      }
    } catch (e) {
      T.setText("tokens-error", "Cannot load the token counts: " + e.message);
    }
  }
  load();
  setInterval(load, 5000);
})();
