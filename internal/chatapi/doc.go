// Package chatapi is the agent's HTTP way in: POST /api/v1/chat on the
// daemon's loopback server, behind the operator's credentials.
//
// The body is one JSON object {"message": "...", "session_id": "..."}
// (session_id optional: without it a session starts, and the reply names
// it). The answer is the orchestrator's Reply as JSON, or, when the request
// sends Accept: text/event-stream, server-sent events: one "token" event per
// streamed piece of text ({"text": "..."}), then one "done" event carrying
// the Reply, whose answer is authoritative. Refusals are JSON {"error": ...}
// with 400 (every problem of the body named), 401, 404 (unknown or expired
// session), 405, 413, 415 or 429. ReadEvents and ScanEvents decode the
// event stream for clients.
package chatapi
