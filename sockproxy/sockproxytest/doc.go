// Package sockproxytest helps test code that talks to the Docker engine
// through a sockproxy.Proxy, as net/http/httptest helps test HTTP code.
//
// Engine is an in-memory Docker engine that answers the calls the proxy
// forwards (ping, version, create, inspect, list, start, stop, kill,
// wait, remove) and records every request it receives. Transport hands the
// proxy's upstream requests to any http.Handler in process, with no socket.
// Serve runs a proxy on a fresh unix socket for the rest of a test, the way
// Talos serves it, and returns the socket's path and a way to know the
// server has finished each connection.
package sockproxytest
