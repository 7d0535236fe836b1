// Dream (maintenance) cycle reports, newest first, each as text.
"use strict";
(function () {
  const T = window.Talos;
  async function load() {
    try {
      const v = await T.fetchJSON("/api/dreams");
      T.setText("dreams-error", v.error || (v.reports.length ? "" : "No dream cycle has run yet."));
      const box = document.getElementById("dreams");
      T.clear(box);
      for (const r of v.reports || []) {
        const s = T.el("section");
        s.appendChild(T.el("h2", r.id + " · " + r.kind + " · " + r.outcome));
        s.appendChild(T.el("p", "started " + T.fmtTime(r.started) + ", took " + r.duration, "muted"));
        s.appendChild(T.el("pre", r.summary, "report"));
        box.appendChild(s);
      }
    } catch (e) {
      T.setText("dreams-error", "Cannot load the reports: " + e.message);
    }
  }
  load();
  setInterval(load, 30000);
})();
