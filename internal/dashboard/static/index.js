// The overview: health checks, the agent's adapters, maintenance. Refreshed
// every 5 s.
"use strict";
(function () {
  const T = window.Talos;
  function render(ov) {
    const h = ov.health || {};
    const tbody = document.querySelector("#health-checks tbody");
    T.clear(tbody);
    if (h.error) {
      T.setText("health-summary", "Health unavailable: " + h.error);
    } else {
      T.setText("health-summary", "Status " + h.status + " · version " + h.version + " · up " + Math.round(h.uptime_s || 0) + " s");
      for (const c of h.checks || []) {
        tbody.appendChild(T.row([c.name + (c.critical ? " (critical)" : ""), c.status, c.detail], "check-" + c.status));
      }
    }
    const a = ov.adapters || {};
    T.setText("adapters-error", a.error || "");
    const at = document.querySelector("#adapters tbody");
    T.clear(at);
    for (const ad of a.list || []) at.appendChild(T.row([ad.role, ad.name, ad.detail]));
    const m = ov.maintenance || {};
    T.setText("maintenance-summary", m.error ? "Maintenance unavailable: " + m.error : m.summary);
    T.setText("maintenance-problem", m.problem || "");
    T.setText("overview-status", "Updated " + new Date().toLocaleTimeString());
  }
  async function load() {
    try {
      render(await T.fetchJSON("/api/overview"));
    } catch (e) {
      T.setText("overview-status", "Cannot load the overview: " + e.message);
    }
  }
  load();
  setInterval(load, 5000);
})();
