package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestRun runs the walkthrough against its fake engine over a real unix
// socket and checks every answer it prints: the allowed create reached the
// engine with the talos.managed label injected, the denied calls got a 403
// with the proxy's message and never reached the engine, and each denial and
// allowed change is in the audit log.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out strings.Builder
	if err := run(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != want {
		t.Errorf("output differs.\n got:\n%s\nwant:\n%s", got, want)
	}
}

const want = `# Docker clients start with a ping.
GET /_ping
  -> 200 OK
  engine saw: GET /_ping
# A create the profile allows: read-only root, no network. The proxy adds the talos.managed label.
POST /v1.41/containers/create?name=skill-demo
  body: {"Image":"busybox","Cmd":["echo","hi"],"Labels":{"app":"skill-demo"},"HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"none"}}
  -> 201 {"Id":"a0cd67698530c84ecedb33fd7a9008a1af0e01374f512aca85a4085e658f7b64","Warnings":[]}
  engine saw: POST /v1.41/containers/create?name=skill-demo with labels app=skill-demo,talos.managed=true
# A privileged create is denied; the engine never sees it.
POST /v1.41/containers/create?name=escape
  body: {"Image":"busybox","HostConfig":{"ReadonlyRootfs":true,"Privileged":true}}
  -> 403 {"message":"sockproxy: denied: HostConfig.Privileged: privileged containers are not allowed"}
# So is a bind mount of the host's root.
POST /v1.41/containers/create?name=escape
  body: {"Image":"busybox","HostConfig":{"ReadonlyRootfs":true,"Binds":["/:/host"]}}
  -> 403 {"message":"sockproxy: denied: HostConfig.Binds: bind source blocked: \"/\" is outside the allowlist []"}
# Starting a Talos container: the proxy checks its label, then forwards the full ID.
POST /v1.41/containers/skill-demo/start
  -> 204
  engine saw: POST /v1.41/containers/a0cd67698530c84ecedb33fd7a9008a1af0e01374f512aca85a4085e658f7b64/start
# Stopping a container Talos did not create is denied.
POST /v1.41/containers/postgres/stop
  -> 403 {"message":"sockproxy: denied: container postgres is not managed by Talos (it lacks the label talos.managed=true)"}
# Endpoints outside the profile (exec, images, volumes, prune, ...) are denied.
GET /v1.41/images/json
  -> 403 {"message":"sockproxy: denied: blocked pattern .*/images.*"}
# Proxy stats: 3 allowed, 4 denied
# Audit log (tier 1), one JSON record per denial and per allowed change:
  INFO  sockproxy.allow POST /v1.41/containers/create             op=create
  WARN  sockproxy.deny  POST /v1.41/containers/create             op=create code=T406
  WARN  sockproxy.deny  POST /v1.41/containers/create             op=create code=T406
  INFO  sockproxy.allow POST /v1.41/containers/skill-demo/start   op=start
  WARN  sockproxy.deny  POST /v1.41/containers/postgres/stop      op=stop code=T406
  WARN  sockproxy.deny  GET  /v1.41/images/json                   code=T406
`
