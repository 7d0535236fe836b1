// Package dashboard is Talos's web dashboard: plain HTML, CSS and
// JavaScript embedded in the binary, served by `talos run` on loopback
// (WEB_BIND_ADDRESS:WEB_PORT, default 127.0.0.1:8080; any other address is
// refused).
//
// Every request needs the operator's credentials (HTTP basic auth with
// BASIC_AUTH_USER and BASIC_AUTH_PASS, compared in constant time). Every
// response carries a strict Content-Security-Policy (CSP: only the
// dashboard's own scripts, no inline code) and X-Frame-Options DENY, and
// every state-changing request must come from the dashboard's own origin
// (Origin and Sec-Fetch-Site, net/http's CrossOriginProtection).
//
// The pages carry no data: their scripts fetch JSON (OverviewPath,
// SkillsPath) and put every string into the page as text, never as HTML.
// The views are the overview (health checks, the agent's adapters, the
// maintenance schedule), the chat (the chat API at ChatPath, streamed with
// server-sent events, with abort) and the skills in quarantine
// (read-only). A view whose source is not wired says so.
package dashboard
