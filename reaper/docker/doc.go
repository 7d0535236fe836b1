// Package docker implements reaper.Engine with the moby client
// (github.com/moby/moby/client). Point it at any Docker API endpoint; in the
// daemon that is the socket proxy's maintenance listener, so the respawn
// manager and the zombie hunt are held to the proxy's policy like every
// other client (labelled containers only).
//
// The client negotiates the API version on its first request, so it works
// with older engines (the harness runs API 1.41).
package docker
