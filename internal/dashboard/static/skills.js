// The skills page: quarantine records, read-only.
"use strict";
(function () {
  const T = window.Talos;
  function strikes(s) {
    if (s.strikes !== undefined) return String(s.strikes);
    return s.strikes_error ? "unknown: " + s.strikes_error : "";
  }
  async function load() {
    const tbody = document.querySelector("#skills tbody");
    try {
      const v = await T.fetchJSON("/api/skills");
      T.setText("skills-error", v.error || "");
      T.clear(tbody);
      if (!v.error && (!v.records || v.records.length === 0)) {
        tbody.appendChild(T.row(["No skills in quarantine.", "", "", "", "", "", "", ""]));
      }
      for (const s of v.records || []) {
        tbody.appendChild(T.row([s.id + "@" + s.version + " #" + s.hash + " (" + s.language + ")", s.state, s.scan,
          s.clean_runs + " / " + s.failed_runs, strikes(s), s.source, s.approval || "", T.fmtTime(s.updated_at)], "state-" + s.state));
      }
    } catch (e) {
      T.setText("skills-error", "Cannot load the skills: " + e.message);
    }
  }
  load();
  setInterval(load, 10000);
})();
