package sockproxy_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/sockproxy"
)

type denyRow struct {
	name    string
	maint   bool   // send to the maintenance profile's proxy instead of skills
	method  string // default POST
	target  string
	body    string
	ctype   string // default application/json when there is a body
	chunked bool
	raw     string // a whole raw request instead of method/target/body
}

func (r denyRow) request() string {
	if r.raw != "" {
		return r.raw
	}
	m := r.method
	if m == "" {
		m = "POST"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n", m, r.target)
	if r.body != "" || r.chunked {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
		}
		fmt.Fprintf(&b, "Content-Type: %s\r\n", ct)
	}
	switch {
	case r.chunked:
		b.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		for body := r.body; body != ""; {
			n := min(len(body), 4096)
			fmt.Fprintf(&b, "%x\r\n%s\r\n", n, body[:n])
			body = body[n:]
		}
		b.WriteString("0\r\n\r\n")
	case r.body != "":
		fmt.Fprintf(&b, "Content-Length: %d\r\n\r\n%s", len(r.body), r.body)
	default:
		b.WriteString("\r\n")
	}
	return b.String()
}

// TestEngineForbiddenRequests sends forbidden requests to proxies in front of
// the real engine: each must be answered 403 with a Docker-style message,
// audited, and leave the engine as it was.
func TestEngineForbiddenRequests(t *testing.T) {
	host := testenv.DockerHost(t)
	image := testenv.BusyboxImage(t)
	eng := newClient(t, host)
	skills := startProxy(t, sockproxy.Config{Upstream: host, Profile: sockproxy.SkillsProfile()})
	maint := startProxy(t, sockproxy.Config{Upstream: host, Profile: sockproxy.MaintenanceProfile()})
	ctx := context.Background()

	run := randHex(4)
	managed := engineCreate(t, eng, image, "sp-deny-managed-"+run,
		map[string]string{sockproxy.LabelManaged: sockproxy.LabelManagedValue}, "sleep", "30")
	plain := engineCreate(t, eng, image, "sp-deny-plain-"+run, nil, "sleep", "30")
	// Running ones, so a stop or kill that got through would show.
	managedUp := engineCreate(t, eng, image, "sp-deny-managed-up-"+run,
		map[string]string{sockproxy.LabelManaged: sockproxy.LabelManagedValue}, "sleep", "60")
	plainUp := engineCreate(t, eng, image, "sp-deny-plain-up-"+run, nil, "sleep", "60")
	for _, id := range []string{managedUp, plainUp} {
		if _, err := eng.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	create := func(extraHC string) string {
		return `{"Image":"` + image + `","Cmd":["true"],"Labels":{"talos.test.run":"` + run + `"},"HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"none"` + extraHC + `}}`
	}
	n := 0
	ct := func() string { n++; return fmt.Sprintf("/v1.41/containers/create?name=sp-deny-%s-%d", run, n) }

	// Positive control: the base body is allowed, so each row below is denied
	// for the one thing it adds.
	ok := strings.Replace(create(""), run, run+"-ok", 1)
	code, body := rawRequest(t, skills.sock, denyRow{target: "/v1.41/containers/create", body: ok}.request())
	if code != 201 {
		t.Fatalf("control create: %d %s", code, body)
	}
	var okRes struct{ Id string }
	_ = json.Unmarshal([]byte(body), &okRes)
	cleanupContainer(t, eng, okRes.Id)

	big := create(`,"Env":["PAD=` + strings.Repeat("x", 2<<20) + `"]`)
	rows := []denyRow{
		// every host-access field
		{name: "Privileged", target: ct(), body: create(`,"Privileged":true`)},
		{name: "privileged (lower case)", target: ct(), body: create(`,"privileged":true`)},
		{name: "Privileged duplicated with other case", target: ct(), body: create(`,"Privileged":false,"PRIVILEGED":true`)},
		{name: "Privileged at the top level (legacy wrapper)", target: ct(), body: strings.Replace(create(""), `"HostConfig"`, `"Privileged":true,"HostConfig"`, 1)},
		{name: "CapAdd", target: ct(), body: create(`,"CapAdd":["SYS_ADMIN"]`)},
		{name: "a case variant of the Talos label", target: ct(), body: strings.Replace(create(""), `"Labels":{`, `"Labels":{"TALOS.MANAGED":"false",`, 1)},
		{name: "endpoint NetworkID pointing at the host network", target: ct(), body: strings.Replace(create(""), `}}`, `},"NetworkingConfig":{"EndpointsConfig":{"none":{"NetworkID":"host"}}}}`, 1)},
		{name: "NetworkMode host (Kelvin sign K)", target: ct(), body: strings.Replace(create(""), `"NetworkMode":"none"`, `"NetworKMode":"host"`, 1)},
		{name: "NetworkMode host", target: ct(), body: strings.Replace(create(""), `"NetworkMode":"none"`, `"NetworkMode":"host"`, 1)},
		{name: "NetworkMode container:", target: ct(), body: strings.Replace(create(""), `"NetworkMode":"none"`, `"NetworkMode":"container:`+managed+`"`, 1)},
		{name: "PidMode host", target: ct(), body: create(`,"PidMode":"host"`)},
		{name: "PidMode container:", target: ct(), body: create(`,"PidMode":"container:` + managed + `"`)},
		{name: "IpcMode host", target: ct(), body: create(`,"IpcMode":"host"`)},
		{name: "UTSMode host", target: ct(), body: create(`,"UTSMode":"host"`)},
		{name: "UsernsMode host", target: ct(), body: create(`,"UsernsMode":"host"`)},
		{name: "CgroupnsMode host", target: ct(), body: create(`,"CgroupnsMode":"host"`)},
		{name: "Devices", target: ct(), body: create(`,"Devices":[{"PathOnHost":"/dev/null","PathInContainer":"/dev/x","CgroupPermissions":"rwm"}]`)},
		{name: "DeviceRequests", target: ct(), body: create(`,"DeviceRequests":[{"Driver":"nvidia","Count":-1,"Capabilities":[["gpu"]]}]`)},
		{name: "SecurityOpt seccomp=unconfined", target: ct(), body: create(`,"SecurityOpt":["seccomp=unconfined"]`)},
		{name: "SecurityOpt apparmor=unconfined", target: ct(), body: create(`,"SecurityOpt":["apparmor=unconfined"]`)},
		{name: "SecurityOpt label=disable", target: ct(), body: create(`,"SecurityOpt":["label=disable"]`)},
		{name: "Sysctls", target: ct(), body: create(`,"Sysctls":{"net.ipv4.ip_unprivileged_port_start":"0"}`)},
		{name: "VolumesFrom", target: ct(), body: create(`,"VolumesFrom":["` + managed + `"]`)},
		{name: "CgroupParent", target: ct(), body: create(`,"CgroupParent":"/system.slice"`)},
		{name: "Binds /etc", target: ct(), body: create(`,"Binds":["/etc:/host-etc:ro"]`)},
		{name: "Binds docker.sock", target: ct(), body: create(`,"Binds":["/var/run/docker.sock:/var/run/docker.sock"]`)},
		{name: "Mounts bind /", target: ct(), body: create(`,"Mounts":[{"Type":"bind","Source":"/","Target":"/host"}]`)},
		{name: "Mounts volume with bind driver options", target: ct(), body: create(`,"Mounts":[{"Type":"volume","Target":"/host","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]`)},
		{name: "ReadonlyRootfs absent", target: ct(), body: strings.Replace(create(""), `"ReadonlyRootfs":true,`, ``, 1)},
		{name: "ReadonlyRootfs false", target: ct(), body: strings.Replace(create(""), `"ReadonlyRootfs":true`, `"ReadonlyRootfs":false`, 1)},
		{name: "PortBindings", target: ct(), body: create(`,"PortBindings":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"18080"}]}`)},
		// bodies
		{name: "create body not JSON (text/plain)", target: ct(), body: "Image=busybox", ctype: "text/plain"},
		{name: "create body invalid JSON", target: ct(), body: `{"Image":"busybox",`},
		{name: "create without a body", target: ct()},
		{name: "create body over 1 MiB", target: ct(), body: big},
		{name: "create body over 1 MiB, chunked", target: ct(), body: big, chunked: true},
		{name: "chunked body on start (legacy HostConfig at start)", target: "/v1.23/containers/" + managed + "/start", body: `{"Privileged":true}`, chunked: true},
		{name: "chunked body on start, current API", target: "/v1.41/containers/" + managed + "/start", body: `{"Privileged":true}`, chunked: true},
		// traversal encodings
		{name: "traversal ..", method: "GET", target: "/v1.41/containers/" + managed + "/../../images/json"},
		{name: "traversal %2e%2e", method: "GET", target: "/v1.41/containers/%2e%2e/images/json"},
		{name: "traversal %2E%2E%2F", method: "GET", target: "/v1.41/containers/x%2F%2E%2E%2F%2E%2E%2Finfo"},
		{name: "double encoding %252e", method: "GET", target: "/v1.41/containers/%252e%252e/info"},
		{name: "double slash //", method: "GET", target: "//v1.41/info"},
		{name: "double slash inside", method: "GET", target: "/v1.41/containers//" + plain + "/json"},
		{name: "dot segment", method: "GET", target: "/v1.41/containers/./" + plain + "/json"},
		// endpoints outside the allowlist
		{name: "exec create", target: "/v1.41/containers/" + managed + "/exec", body: `{"Cmd":["sh"],"AttachStdout":true}`},
		{name: "exec start", target: "/v1.41/exec/" + managed + "/start", body: `{"Detach":true}`},
		{name: "images list", method: "GET", target: "/v1.41/images/json"},
		{name: "image pull", target: "/v1.41/images/create?fromImage=alpine&tag=latest"},
		{name: "build", target: "/v1.41/build?t=evil", body: "x", ctype: "application/x-tar"},
		{name: "volume create", target: "/v1.41/volumes/create", body: `{"Name":"sp-deny-vol-` + run + `"}`},
		{name: "network create", target: "/v1.41/networks/create", body: `{"Name":"sp-deny-net-` + run + `"}`},
		{name: "swarm init", target: "/v1.41/swarm/init", body: `{"ListenAddr":"127.0.0.1:2377"}`},
		{name: "plugins", method: "GET", target: "/v1.41/plugins"},
		{name: "secrets", method: "GET", target: "/v1.41/secrets"},
		{name: "container prune", target: "/v1.41/containers/prune"},
		{name: "system info", method: "GET", target: "/v1.41/info"},
		{name: "events", method: "GET", target: "/v1.41/events"},
		{name: "archive (copy into container)", method: "PUT", target: "/v1.41/containers/" + managed + "/archive?path=/", body: "x", ctype: "application/x-tar"},
		{name: "rename", target: "/v1.41/containers/" + managed + "/rename?name=x"},
		{name: "attach not in the skills profile", target: "/v1.41/containers/" + managed + "/attach?stream=1&stdout=1"},
		// methods and queries
		{name: "DELETE on _ping", method: "DELETE", target: "/_ping"},
		{name: "POST on the container list", target: "/v1.41/containers/json"},
		{name: "start with checkpoint-dir (a host path)", target: "/v1.41/containers/" + managed + "/start?checkpoint-dir=/etc"},
		{name: "list with an unknown filter", method: "GET", target: "/v1.41/containers/json?filters=%7B%22evil%22%3A%7B%22x%22%3Atrue%7D%7D"},
		{name: "repeated query parameter", method: "GET", target: "/v1.41/containers/json?all=1&all=0"},
		{name: "API version below the minimum", method: "GET", target: "/v1.12/containers/json"},
		// profiles and labels
		{name: "kill in the skills profile", target: "/v1.41/containers/" + managedUp + "/kill"},
		{name: "unlabelled: stop (running)", target: "/v1.41/containers/" + plainUp + "/stop?t=0"},
		{name: "unlabelled: kill (maintenance, running)", maint: true, target: "/v1.41/containers/" + plainUp + "/kill"},
		{name: "remove in the skills profile", method: "DELETE", target: "/v1.41/containers/" + managed + "?force=1"},
		{name: "unlabelled: inspect", method: "GET", target: "/v1.41/containers/" + plain + "/json"},
		{name: "unlabelled: start", target: "/v1.41/containers/" + plain + "/start"},
		{name: "unlabelled: logs by ID prefix", method: "GET", target: "/v1.41/containers/" + plain[:12] + "/logs?stdout=1"},
		{name: "unlabelled: inspect by name", method: "GET", target: "/v1.41/containers/sp-deny-plain-" + run + "/json"},
		{name: "unlabelled: kill (maintenance)", maint: true, target: "/v1.41/containers/" + plain + "/kill"},
		{name: "unlabelled: remove (maintenance)", maint: true, method: "DELETE", target: "/v1.41/containers/" + plain + "?force=1"},
		{name: "remove with link=1 (maintenance)", maint: true, method: "DELETE", target: "/v1.41/containers/" + managed + "?link=1"},
		// request lines the HTTP server parses but the proxy refuses
		{name: "absolute-form request target", raw: "GET http://docker/v1.41/images/json HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"},
		{name: "asterisk-form request target", raw: "GET * HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"},
	}
	if len(rows) < 40 {
		t.Fatalf("only %d rows", len(rows))
	}
	for _, r := range rows {
		pt := skills
		if r.maint {
			pt = maint
		}
		before := len(pt.audit.records("sockproxy.deny"))
		code, body := rawRequest(t, pt.sock, r.request())
		if code != 403 {
			t.Errorf("%s: status %d (%s); want 403", r.name, code, strings.TrimSpace(body))
			continue
		}
		var msg struct{ Message string }
		if err := json.Unmarshal([]byte(body), &msg); err != nil || !strings.HasPrefix(msg.Message, "sockproxy: denied: ") {
			t.Errorf("%s: body %q is not a Docker-style denial", r.name, body)
		}
		recs := pt.audit.records("sockproxy.deny")
		if len(recs) != before+1 {
			t.Errorf("%s: %d new audit records; want 1", r.name, len(recs)-before)
			continue
		}
		if rec := recs[len(recs)-1]; rec["reason"] == "" || rec["status"] != float64(403) || rec["code"] != "T406" {
			t.Errorf("%s: audit record %v", r.name, rec)
		}
		t.Logf("%-50s 403 %s", r.name, strings.TrimPrefix(msg.Message, "sockproxy: denied: "))
	}

	// The engine is as it was.
	list, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "talos.test.run="+run)})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("denied creates left %d containers (%v)", len(list.Items), err)
	}
	for _, id := range []string{managed, plain} {
		c, err := eng.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil {
			t.Fatalf("container %s is gone: %v", id, err)
		}
		if c.Container.State.Status != "created" || len(c.Container.ExecIDs) > 0 || c.Container.HostConfig.Privileged {
			t.Errorf("container %s changed: status %s, execs %v", id, c.Container.State.Status, c.Container.ExecIDs)
		}
	}
	for _, id := range []string{managedUp, plainUp} {
		c, err := eng.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
		if err != nil || c.Container.State.Status != "running" {
			t.Errorf("running container %s was stopped or removed (%v)", id, err)
		}
	}
	if _, err := eng.VolumeInspect(ctx, "sp-deny-vol-"+run, client.VolumeInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("volume was created: %v", err)
	}
	if _, err := eng.NetworkInspect(ctx, "sp-deny-net-"+run, client.NetworkInspectOptions{}); !cerrdefs.IsNotFound(err) {
		t.Errorf("network was created: %v", err)
	}
	imgs, err := eng.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", "alpine")})
	if err != nil || len(imgs.Items) != 0 {
		t.Errorf("image pulled: %d, %v", len(imgs.Items), err)
	}
	info, err := eng.Info(ctx, client.InfoOptions{})
	if err != nil || info.Info.Swarm.LocalNodeState != swarm.LocalNodeStateInactive {
		t.Errorf("swarm state %q, %v", info.Info.Swarm.LocalNodeState, err)
	}
}

// TestEngineMalformedRequestLine: a request the HTTP server cannot parse is
// never forwarded, answered 403 with the proxy's JSON message (in place of
// net/http's own 400, 431 or 505), and audited once as a malformed-request
// denial.
func TestEngineMalformedRequestLine(t *testing.T) {
	host := testenv.DockerHost(t)
	eng := newClient(t, host)
	pt := startProxy(t, sockproxy.Config{Upstream: host})
	ctx := context.Background()
	run := randHex(4)
	create := `{"Image":"busybox","Labels":{"talos.test.run":"` + run + `"},"HostConfig":{"ReadonlyRootfs":true}}`
	for _, line := range []string{
		"GET /v1.41/containers/json HTTP/1.1 extra\r\nHost: d\r\n\r\n",
		"GET /v1.41/containers/json\r\nHost: d\r\n\r\n",
		"GET v1.41/images/json HTTP/1.1\r\nHost: d\r\n\r\n",
		"GET /v1.41/images/json HTTP/9.9\r\nHost: d\r\n\r\n",
		"GARBAGE\r\n\r\n",
		"\x00\x01\r\n\r\n",
		"POST /containers/create HTTP/1.1 x\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: " + fmt.Sprint(len(create)) + "\r\n\r\n" + create,
		"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\nContent-Length: -5\r\n\r\n" + create,
		"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: " + strings.Repeat("a", 70<<10) + "\r\n\r\n",
	} {
		before := len(pt.audit.records("sockproxy.deny"))
		closed := pt.srv.ConnsDone()
		code, _ := rawRequest(t, pt.sock, line) // closes its connection
		if code != 403 {
			t.Errorf("%.40q: status %d; want 403", line, code)
			continue
		}
		// Once the server is done with the connection, every record it
		// causes (at the answer or at the close) is written.
		pt.srv.WaitConnsDone(t, closed+1)
		recs := pt.audit.records("sockproxy.deny")
		if len(recs) != before+1 {
			t.Errorf("%.40q: %d new audit records; want 1", line, len(recs)-before)
			continue
		}
		rec := recs[len(recs)-1]
		if r, _ := rec["reason"].(string); !strings.HasPrefix(r, "malformed request") || rec["code"] != "T406" || rec["request_line"] == nil || rec["client"] == "" {
			t.Errorf("%.40q: audit record %v", line, rec)
		}
		t.Logf("%3d %v", code, rec["request_line"])
	}
	// OPTIONS * reaches the proxy (not net/http's own handler) and is denied.
	if code, _ := rawRequest(t, pt.sock, "OPTIONS * HTTP/1.1\r\nHost: d\r\n\r\n"); code != 403 {
		t.Errorf("OPTIONS *: %d; want 403", code)
	}
	if s := pt.proxy.Stats(); s.Allowed != 0 {
		t.Errorf("a malformed request was forwarded: %+v", s)
	}
	list, err := eng.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", "talos.test.run="+run)})
	if err != nil || len(list.Items) != 0 {
		t.Errorf("malformed creates left %d containers (%v)", len(list.Items), err)
	}
}
