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
// Every state-changing request also carries the page's CSRF token
// (CSRFHeader, read from SessionPath), and the chat's WebSocket
// (WSChatPath) is accepted only from the dashboard's own origin.
//
// The pages carry no data: their scripts fetch JSON and put every string
// into the page as text, never as HTML. The views are the overview (health
// checks, the agent's adapters, the maintenance schedule); health and live
// metrics refreshed every second with a chart (Chart.js, vendored under
// static/vendor with its licence); the chat (the chat API at ChatPath,
// streamed with server-sent events, with abort, and WSChatPath); live logs
// (a LogFeed on the daemon's logger, streamed at LogsStreamPath); security
// (the lockdown and its unlock, firewall decisions and socket-proxy
// denials from a LogFeed on the audit logger, MCP definitions and skills awaiting approval, strikes, and
// the kill switch behind a typed confirmation); memory (stats, search,
// prune, restore); tokens per model and day; dream reports; and the skills
// in quarantine. A view whose source is not wired says so.
package dashboard
