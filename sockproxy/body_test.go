package sockproxy

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
)

// clientBody is what the moby client sends for an allowed create: every
// non-omitempty field of Config and HostConfig is present (mostly null).
func clientBody(t testing.TB) []byte {
	t.Helper()
	ro := true
	b, err := json.Marshal(container.CreateRequest{
		Config: &container.Config{Image: "talos-test/busybox:1", Cmd: []string{"echo", "hi"},
			Labels: map[string]string{"app": "x"}},
		HostConfig: &container.HostConfig{ReadonlyRootfs: ro, NetworkMode: "none", AutoRemove: false,
			CapDrop: []string{"ALL"}, SecurityOpt: []string{"no-new-privileges"},
			Tmpfs:  map[string]string{"/tmp": "rw,size=1m"},
			Mounts: []mount.Mount{{Type: mount.TypeTmpfs, Target: "/work"}}},
		NetworkingConfig: &network.NetworkingConfig{},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// dockerView decodes a forwarded body the way the engine does: encoding/json,
// case-insensitive keys, and the legacy wrapper that also reads HostConfig
// fields from the top level.
type dockerView struct {
	*container.Config
	InnerHostConfig  *container.HostConfig     `json:"HostConfig,omitempty"`
	NetworkingConfig *network.NetworkingConfig `json:"NetworkingConfig,omitempty"`
	*container.HostConfig
}

func newFilter(p Profile) bodyFilter { return bodyFilter{profile: p, label: LabelManaged} }

func TestCheckCreateAllowsClientBodyAndInjectsLabel(t *testing.T) {
	out, err := newFilter(SkillsProfile()).checkCreate(clientBody(t))
	if err != nil {
		t.Fatalf("a safe create from the moby client was denied: %v", err)
	}
	var v dockerView
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	if v.Config.Labels[LabelManaged] != LabelManagedValue || v.Config.Labels["app"] != "x" {
		t.Fatalf("labels = %v; want the client's label and %s=true", v.Config.Labels, LabelManaged)
	}
	if !v.InnerHostConfig.ReadonlyRootfs || v.InnerHostConfig.NetworkMode != "none" {
		t.Fatalf("host config changed: %+v", v.InnerHostConfig)
	}
	// A client cannot un-set the label either.
	b := strings.Replace(string(clientBody(t)), `"app":"x"`, `"talos.managed":"false"`, 1)
	out, err = newFilter(SkillsProfile()).checkCreate([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), `"talos.managed":"true"`) || strings.Contains(string(out), `"false"`) {
		t.Fatalf("label not forced: %s", out)
	}
}

const safeHC = `"ReadonlyRootfs":true,"NetworkMode":"none"`

func create(hc string) string { return `{"Image":"busybox","HostConfig":{` + safeHC + hc + `}}` }

func TestCheckCreateDenies(t *testing.T) {
	cases := map[string]struct{ body, want string }{
		"not JSON":                {`{"Image":`, "invalid JSON"},
		"array":                   {`[]`, "must be a JSON object"},
		"trailing data":           {create("") + `{}`, "invalid JSON"},
		"no HostConfig":           {`{"Image":"busybox"}`, "HostConfig"},
		"no image":                {`{"HostConfig":{"ReadonlyRootfs":true}}`, "Image"},
		"ReadonlyRootfs absent":   {`{"Image":"b","HostConfig":{"NetworkMode":"none"}}`, "ReadonlyRootfs"},
		"ReadonlyRootfs false":    {`{"Image":"b","HostConfig":{"ReadonlyRootfs":false}}`, "ReadonlyRootfs"},
		"ReadonlyRootfs string":   {`{"Image":"b","HostConfig":{"ReadonlyRootfs":"true"}}`, "ReadonlyRootfs"},
		"Privileged":              {create(`,"Privileged":true`), "Privileged"},
		"Privileged as 1":         {create(`,"Privileged":1`), "Privileged"},
		"privileged lowercase":    {create(`,"privileged":true`), "spelled"},
		"PRIVILEGED":              {create(`,"PRIVILEGED":true`), "spelled"},
		"duplicate fold":          {create(`,"Privileged":false,"privileged":true`), "duplicate key"},
		"duplicate exact":         {`{"Image":"b","HostConfig":{` + safeHC + `},"HostConfig":{"Privileged":true,"ReadonlyRootfs":true}}`, "duplicate key"},
		"hostconfig duplicate":    {`{"Image":"b","HostConfig":{` + safeHC + `},"hostconfig":{"Privileged":true}}`, "duplicate key"},
		"top-level Privileged":    {`{"Image":"b","Privileged":true,"HostConfig":{` + safeHC + `}}`, "unknown field"},
		"top-level Binds":         {`{"Image":"b","Binds":["/:/host"],"HostConfig":{` + safeHC + `}}`, "unknown field"},
		"kelvin NetworkMode":      {`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"NetworKMode":"host"}}`, "spelled"},
		"long-s Sysctls":          {create(`,"ſysctls":{"kernel.x":"1"}`), "spelled"},
		"CapAdd":                  {create(`,"CapAdd":["SYS_ADMIN"]`), "CapAdd"},
		"CapAdd ALL":              {create(`,"CapAdd":["ALL"]`), "CapAdd"},
		"NetworkMode host":        {`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"host"}}`, "host network"},
		"NetworkMode HOST":        {`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"HOST"}}`, "host network"},
		"NetworkMode container":   {`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"container:abc"}}`, "another container"},
		"NetworkMode custom":      {`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"talos-internal"}}`, "not allowed"},
		"endpoint host":           {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"EndpointsConfig":{"host":{}}}}`, "host network"},
		"PidMode host":            {create(`,"PidMode":"host"`), "PidMode"},
		"PidMode container":       {create(`,"PidMode":"container:x"`), "PidMode"},
		"IpcMode host":            {create(`,"IpcMode":"host"`), "IpcMode"},
		"IpcMode container":       {create(`,"IpcMode":"container:x"`), "IpcMode"},
		"UTSMode host":            {create(`,"UTSMode":"host"`), "UTSMode"},
		"UsernsMode host":         {create(`,"UsernsMode":"host"`), "UsernsMode"},
		"CgroupnsMode host":       {create(`,"CgroupnsMode":"host"`), "CgroupnsMode"},
		"Cgroup container":        {create(`,"Cgroup":"container:x"`), "Cgroup"},
		"Devices":                 {create(`,"Devices":[{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}]`), "Devices"},
		"DeviceRequests":          {create(`,"DeviceRequests":[{"Driver":"nvidia","Count":-1}]`), "DeviceRequests"},
		"DeviceCgroupRules":       {create(`,"DeviceCgroupRules":["a *:* rwm"]`), "DeviceCgroupRules"},
		"seccomp unconfined":      {create(`,"SecurityOpt":["seccomp=unconfined"]`), "unconfined"},
		"apparmor unconfined":     {create(`,"SecurityOpt":["apparmor:unconfined"]`), "unconfined"},
		"label disable":           {create(`,"SecurityOpt":["label=disable"]`), "SecurityOpt"},
		"seccomp custom profile":  {create(`,"SecurityOpt":["seccomp={\"defaultAction\":\"SCMP_ACT_ALLOW\"}"]`), "SecurityOpt"},
		"systempaths unconfined":  {create(`,"SecurityOpt":["systempaths=unconfined"]`), "unconfined"},
		"Sysctls":                 {create(`,"Sysctls":{"net.ipv4.ip_forward":"1"}`), "Sysctls"},
		"VolumesFrom":             {create(`,"VolumesFrom":["other"]`), "VolumesFrom"},
		"CgroupParent":            {create(`,"CgroupParent":"/"`), "CgroupParent"},
		"Binds root":              {create(`,"Binds":["/:/host"]`), "bind source blocked"},
		"Binds docker.sock":       {create(`,"Binds":["/var/run/docker.sock:/var/run/docker.sock"]`), "bind source blocked"},
		"Binds traversal":         {create(`,"Binds":["/srv/ok/../../etc:/x"]`), "clean path"},
		"Binds named volume":      {create(`,"Binds":["data:/data"]`), "named volume"},
		"Binds relative":          {create(`,"Binds":["./x:/x"]`), "absolute"},
		"Mounts bind":             {create(`,"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}]`), "bind source blocked"},
		"Mounts bind lowercase":   {create(`,"Mounts":[{"type":"bind","Source":"/etc","Target":"/x"}]`), "spelled"},
		"Mounts volume driver":    {create(`,"Mounts":[{"Type":"volume","Target":"/x","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/"}}}}]`), "DriverConfig"},
		"Mounts named volume":     {create(`,"Mounts":[{"Type":"volume","Source":"v","Target":"/x"}]`), "named volume"},
		"Mounts npipe":            {create(`,"Mounts":[{"Type":"npipe","Source":"x","Target":"/x"}]`), "mount type"},
		"Mounts image":            {create(`,"Mounts":[{"Type":"image","Source":"busybox","Target":"/x"}]`), "mount type"},
		"Mounts unknown field":    {create(`,"Mounts":[{"Type":"tmpfs","Target":"/x","Evil":1}]`), "unknown field"},
		"PortBindings":            {create(`,"PortBindings":{"80/tcp":[{"HostIp":"0.0.0.0","HostPort":"80"}]}`), "PortBindings"},
		"PublishAllPorts":         {create(`,"PublishAllPorts":true`), "PublishAllPorts"},
		"MaskedPaths empty":       {create(`,"MaskedPaths":[]`), "MaskedPaths"},
		"ReadonlyPaths":           {create(`,"ReadonlyPaths":["/x"]`), "ReadonlyPaths"},
		"Runtime":                 {create(`,"Runtime":"runsc-unsafe"`), "Runtime"},
		"LogConfig syslog":        {create(`,"LogConfig":{"Type":"syslog","Config":{}}`), "log driver"},
		"VolumeDriver":            {create(`,"VolumeDriver":"evil"`), "VolumeDriver"},
		"Annotations":             {create(`,"Annotations":{"io.kubernetes.cri.x":"y"}`), "Annotations"},
		"OomScoreAdj negative":    {create(`,"OomScoreAdj":-1000`), "OomScoreAdj"},
		"StorageOpt":              {create(`,"StorageOpt":{"dm.basesize":"1G"}`), "StorageOpt"},
		"unknown HostConfig key":  {create(`,"FutureHostAccess":true`), "unknown field"},
		"HostConfig not object":   {`{"Image":"b","HostConfig":[]}`, "HostConfig"},
		"deep nesting":            {`{"Image":"b","Labels":` + strings.Repeat(`{"a":`, 40) + `1` + strings.Repeat(`}`, 40) + `}`, "deeper"},
		"Labels not object":       {`{"Image":"b","Labels":["x"],"HostConfig":{` + safeHC + `}}`, "Labels"},
		"CapAdd not list":         {create(`,"CapAdd":"SYS_ADMIN"`), "CapAdd"},
		"NetworkingConfig strict": {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"Evil":1}}`, "unknown field"},
		"label upper case":        {`{"Image":"b","Labels":{"TALOS.MANAGED":"false"},"HostConfig":{` + safeHC + `}}`, "variant of the Talos label"},
		"label long s":            {`{"Image":"b","Labels":{"taloſ.managed":"false"},"HostConfig":{` + safeHC + `}}`, "variant of the Talos label"},
		"endpoint NetworkID":      {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"EndpointsConfig":{"none":{"NetworkID":"host"}}}}`, "must be empty"},
		"endpoint DriverOpts":     {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"EndpointsConfig":{"none":{"DriverOpts":{"x":"y"}}}}}`, "must be empty"},
		"endpoint Links":          {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"EndpointsConfig":{"none":{"Links":["db:db"]}}}}`, "must be empty"},
		"endpoint unknown field":  {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"EndpointsConfig":{"none":{"Evil":1}}}}`, "unknown field"},
		"endpoint networkid case": {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"EndpointsConfig":{"none":{"networkid":"host"}}}}`, "spelled"},
		"endpoint not object":     {`{"Image":"b","HostConfig":{` + safeHC + `},"NetworkingConfig":{"EndpointsConfig":{"none":[]}}}`, "JSON object"},
	}
	f := newFilter(SkillsProfile())
	for name, c := range cases {
		_, err := f.checkCreate([]byte(c.body))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: checkCreate(%s) = %v; want an error containing %q", name, c.body, err, c.want)
		}
	}
}

// TestCheckCreateEndpointSettingsFromClient: the moby client sends every
// EndpointSettings field, empty; that is allowed.
func TestCheckCreateEndpointSettingsFromClient(t *testing.T) {
	var req map[string]any
	if err := json.Unmarshal(clientBody(t), &req); err != nil {
		t.Fatal(err)
	}
	req["NetworkingConfig"] = network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"none": {Aliases: []string{"skill"}}}}
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"NetworkID":""`) {
		t.Fatalf("test body lacks the client's empty fields: %s", body)
	}
	if _, err := newFilter(SkillsProfile()).checkCreate(body); err != nil {
		t.Fatalf("the client's endpoint settings were denied: %v", err)
	}
}

func TestCheckCreateProfileAllowances(t *testing.T) {
	p := SkillsProfile()
	p.BindAllowlist = []string{"/srv/ok"}
	p.CapAdd = []string{"CHOWN"}
	p.AllowNamedVolumes = true
	f := newFilter(p)
	for _, hc := range []string{
		`,"Binds":["/srv/ok:/x:ro"]`,
		`,"Binds":["/srv/ok/sub:/x"]`,
		`,"Binds":["/srv/ok:/x:ro,rprivate"]`,
		`,"Binds":["data:/data"]`,
		`,"CapAdd":["CHOWN"]`,
		`,"CapAdd":["CAP_CHOWN"]`,
		`,"Mounts":[{"Type":"bind","Source":"/srv/ok","Target":"/x","ReadOnly":true,"BindOptions":{"Propagation":"rprivate"}}]`,
		`,"Mounts":[{"Type":"volume","Source":"v","Target":"/x","VolumeOptions":{"NoCopy":true}}]`,
		`,"IpcMode":"private","CgroupnsMode":"private","MaskedPaths":null`,
	} {
		if _, err := f.checkCreate([]byte(create(hc))); err != nil {
			t.Errorf("create with %s denied: %v", hc, err)
		}
	}
	for _, hc := range []string{`,"Binds":["/srv/okay:/x"]`, `,"Binds":["/srv:/x"]`, `,"CapAdd":["SYS_ADMIN"]`,
		`,"Mounts":[{"Type":"bind","Source":"/srv/ok","Target":"/x","BindOptions":{"CreateMountpoint":true}}]`,
		`,"Mounts":[{"Type":"bind","Source":"/srv/ok","Target":"/x","BindOptions":{"Propagation":"rshared"}}]`,
		`,"Binds":["/srv/ok:/x:rshared"]`, `,"Binds":["/srv/ok:/x:Z"]`, `,"Binds":["/srv/ok:/x:ro,z"]`, `,"Binds":["/srv/ok:/x:ro:extra"]`} {
		if _, err := f.checkCreate([]byte(create(hc))); err == nil {
			t.Errorf("create with %s allowed", hc)
		}
	}
}

func TestCheckUpdate(t *testing.T) {
	f := newFilter(SkillsProfile())
	if out, err := f.checkUpdate([]byte(`{"Memory":67108864,"RestartPolicy":{"Name":"no"}}`)); err != nil || !strings.Contains(string(out), "67108864") {
		t.Fatalf("safe update denied: %s %v", out, err)
	}
	for body, want := range map[string]string{
		`{"CgroupParent":"/"}`:                       "CgroupParent",
		`{"Devices":[{"PathOnHost":"/dev/mem"}]}`:    "Devices",
		`{"DeviceRequests":[{"Count":-1}]}`:          "DeviceRequests",
		`{"Privileged":true}`:                        "unknown field",
		`{"memory":1,"Memory":2}`:                    "duplicate",
		`{"devices":[{"PathOnHost":"/dev/mem"}]}`:    "spelled",
		`{"DeviceCgroupRules":["c 1:1 rwm"]}`:        "DeviceCgroupRules",
		`not json`:                                   "invalid JSON",
		`{"Memory":1}` + "\n" + `{"CgroupParent":1}`: "invalid JSON",
	} {
		if _, err := f.checkUpdate([]byte(body)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("checkUpdate(%s) = %v; want %q", body, err, want)
		}
	}
}

func TestFoldKey(t *testing.T) {
	for _, pair := range [][2]string{{"NetworkMode", "NetworKMode"}, {"Sysctls", "ſysctls"}, {"privileged", "PRIVILEGED"}} {
		if foldKey(pair[0]) != foldKey(pair[1]) || !strings.EqualFold(pair[0], pair[1]) {
			t.Errorf("foldKey(%q) != foldKey(%q)", pair[0], pair[1])
		}
	}
	if foldKey("Binds") == foldKey("Bind") {
		t.Error("different keys fold together")
	}
}

// FuzzCheckCreate checks the body filter's promise: whatever it forwards,
// decoded the way the engine decodes it, has no host access.
func FuzzCheckCreate(f *testing.F) {
	f.Add(string(clientBody(f)))
	for _, s := range []string{
		create(""), create(`,"Privileged":true`), create(`,"privileged":true`),
		`{"Image":"b","Privileged":true,"HostConfig":{"ReadonlyRootfs":true}}`,
		create(`,"Binds":["/:/h"]`), create(`,"Mounts":[{"Type":"bind","Source":"/","Target":"/h"}]`),
		create(`,"NetworKMode":"host"`), `{"Image":"b","HostConfig":{"ReadonlyRootfs":true},"hostConfig":{}}`,
		`{"Image":"b","Labels":{"TALOS.MANAGED":"x"},"HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"none"}}`,
		`{"Image":"b","HostConfig":{"ReadonlyRootfs":true,"NetworkMode":"none"},"NetworkingConfig":{"EndpointsConfig":{"none":{"NetworkID":"host"}}}}`,
	} {
		f.Add(s)
	}
	p := SkillsProfile()
	p.BindAllowlist = []string{"/srv/ok"}
	filter := newFilter(p)
	f.Fuzz(func(t *testing.T, body string) {
		out, err := filter.checkCreate([]byte(body))
		if err != nil {
			return
		}
		if _, err := parseJSON(out); err != nil {
			t.Fatalf("forwarded body does not parse: %v\n%s", err, out)
		}
		var v dockerView
		if err := json.Unmarshal(out, &v); err != nil {
			return // the engine would refuse it too
		}
		if v.HostConfig != nil {
			t.Fatalf("top-level HostConfig fields forwarded: %s", out)
		}
		hc := v.InnerHostConfig
		if hc == nil || !hc.ReadonlyRootfs || hc.Privileged || len(hc.CapAdd) > 0 || len(hc.Devices) > 0 ||
			len(hc.DeviceRequests) > 0 || hc.CgroupParent != "" || len(hc.Sysctls) > 0 || len(hc.VolumesFrom) > 0 {
			t.Fatalf("host access forwarded: %s", out)
		}
		for _, m := range []string{string(hc.NetworkMode), string(hc.PidMode), string(hc.IpcMode), string(hc.UTSMode), string(hc.UsernsMode), string(hc.CgroupnsMode)} {
			if l := strings.ToLower(m); l == "host" || strings.HasPrefix(l, "container:") {
				t.Fatalf("namespace %q forwarded: %s", m, out)
			}
		}
		for _, b := range hc.Binds {
			if src, _, ok := strings.Cut(b, ":"); ok && src != "/srv/ok" && !strings.HasPrefix(src, "/srv/ok/") {
				t.Fatalf("bind %q forwarded", b)
			}
		}
		for _, m := range hc.Mounts {
			if m.Type == mount.TypeBind && m.Source != "/srv/ok" && !strings.HasPrefix(m.Source, "/srv/ok/") {
				t.Fatalf("bind mount %q forwarded", m.Source)
			}
			if m.VolumeOptions != nil && m.VolumeOptions.DriverConfig != nil {
				t.Fatalf("volume driver config forwarded")
			}
		}
		for _, o := range hc.SecurityOpt {
			if !strings.HasPrefix(o, "no-new-privileges") {
				t.Fatalf("security opt %q forwarded", o)
			}
		}
		if v.Config == nil || v.Config.Labels[LabelManaged] != LabelManagedValue {
			t.Fatalf("label missing: %s", out)
		}
		for k := range v.Config.Labels {
			if k != LabelManaged && foldKey(k) == foldKey(LabelManaged) {
				t.Fatalf("a variant %q of the Talos label forwarded: %s", k, out)
			}
		}
		if v.NetworkingConfig != nil {
			for name, es := range v.NetworkingConfig.EndpointsConfig {
				if es != nil && (es.NetworkID != "" || len(es.DriverOpts) > 0 || len(es.Links) > 0) {
					t.Fatalf("endpoint settings of %q forwarded: %s", name, out)
				}
			}
		}
	})
}

// BenchmarkCheckCreate measures the body filter on the moby client's create body.
func BenchmarkCheckCreate(b *testing.B) {
	body := clientBody(b)
	f := newFilter(SkillsProfile())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.checkCreate(body); err != nil {
			b.Fatal(err)
		}
	}
}
