package sockproxy

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Known field names, exactly as Docker spells them. Every key of the objects
// the proxy inspects must be one of these, spelled exactly so: an unknown key
// could be a field a newer engine understands (or, at the top level of a
// create body, a HostConfig field the engine's legacy decoder picks up from
// there), and a differently cased key is a bypass attempt.
var (
	configFields = fieldSet("Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr",
		"ExposedPorts", "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image",
		"Volumes", "WorkingDir", "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels",
		"StopSignal", "StopTimeout", "Shell",
		// the wrapper's own members
		"HostConfig", "NetworkingConfig")

	resourcesFields = fieldSet("CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight",
		"BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
		"BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod", "CpuRealtimeRuntime",
		"CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules", "DeviceRequests", "KernelMemory",
		"KernelMemoryTCP", "MemoryReservation", "MemorySwap", "MemorySwappiness", "OomKillDisable",
		"PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth")

	hostConfigFields = union(resourcesFields, fieldSet("Binds", "ContainerIDFile", "LogConfig",
		"NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove", "VolumeDriver", "VolumesFrom",
		"ConsoleSize", "Annotations", "CapAdd", "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch",
		"ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged",
		"PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode", "UsernsMode",
		"ShmSize", "Sysctls", "Runtime", "Umask", "Isolation", "Mounts", "MaskedPaths", "ReadonlyPaths", "Init"))

	updateFields    = union(resourcesFields, fieldSet("RestartPolicy"))
	mountFields     = fieldSet("Type", "Source", "Target", "ReadOnly", "Consistency", "BindOptions", "VolumeOptions", "TmpfsOptions", "ImageOptions", "ClusterOptions")
	bindOptFields   = fieldSet("Propagation", "NonRecursive", "CreateMountpoint", "ReadOnlyNonRecursive", "ReadOnlyForceRecursive")
	volumeOptFields = fieldSet("NoCopy", "Labels", "Subpath", "DriverConfig")
	logConfigFields = fieldSet("Type", "Config")
	netConfigFields = fieldSet("EndpointsConfig")
	// endpointFields are the fields of an EndpointSettings (API 1.41–1.51);
	// endpointMustBeEmpty those of them a sandbox may not set.
	endpointFields = fieldSet("IPAMConfig", "Links", "Aliases", "DriverOpts", "GwPriority", "NetworkID", "EndpointID",
		"Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress", "DNSNames")
	endpointMustBeEmpty = fieldSet("Links", "DriverOpts", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
		"IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen")
	allowedSecOpts   = []string{"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}
	allowedLogTypes  = []string{"", "json-file", "local", "none"}
	allowedRuntimes  = []string{"", "runc"}
	allowedIsolation = []string{"", "default"}
	allowedPropagate = []string{"", "private", "rprivate", "slave", "rslave"}
)

func fieldSet(names ...string) map[string]string {
	m := make(map[string]string, len(names))
	for _, n := range names {
		m[foldKey(n)] = n
	}
	return m
}

func union(a, b map[string]string) map[string]string {
	m := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		m[k] = v
	}
	for k, v := range b {
		m[k] = v
	}
	return m
}

// bodyError is a denial of a body, naming the field.
type bodyError struct {
	field  string
	reason string
}

func (e *bodyError) Error() string {
	if e.field == "" {
		return e.reason
	}
	return e.field + ": " + e.reason
}

func deny(field, format string, args ...any) error {
	return &bodyError{field: field, reason: fmt.Sprintf(format, args...)}
}

// strictKeys checks that every key of obj is a known field spelled exactly.
func strictKeys(where string, obj *jvalue, known map[string]string) error {
	if obj.kind != jObject {
		return deny(where, "must be a JSON object, not %s", obj.kind)
	}
	for _, m := range obj.obj {
		canon, ok := known[m.fold]
		switch {
		case !ok:
			return deny(join(where, m.key), "unknown field (not allowed here)")
		case canon != m.key:
			return deny(join(where, m.key), "field must be spelled %q (the engine ignores case, the proxy does not)", canon)
		}
	}
	return nil
}

func join(where, key string) string {
	if where == "" {
		return truncate(key, 64)
	}
	return where + "." + truncate(key, 64)
}

// bodyFilter checks create and update bodies against one profile.
type bodyFilter struct {
	profile Profile
	label   string
}

// checkCreate inspects a container-create body and returns the JSON to
// forward: the checked tree, re-encoded, with the Talos label added.
func (f bodyFilter) checkCreate(body []byte) ([]byte, error) {
	root, err := parseJSON(body)
	if err != nil {
		return nil, deny("", "invalid JSON: %v", err)
	}
	if err := strictKeys("", root, configFields); err != nil {
		return nil, err
	}
	if img := root.get("Image"); img == nil || img.kind != jString || img.s == "" {
		return nil, deny("Image", "required, a non-empty string")
	}
	hc := root.get("HostConfig")
	if hc == nil || hc.kind != jObject {
		return nil, deny("HostConfig", "required: a HostConfig with ReadonlyRootfs true")
	}
	if err := f.checkHostConfig(hc); err != nil {
		return nil, err
	}
	if nc := root.get("NetworkingConfig"); nc != nil && nc.kind != jNull {
		if err := f.checkNetworkingConfig(nc); err != nil {
			return nil, err
		}
	}
	// Inject the label.
	labels := root.get("Labels")
	if labels == nil || labels.kind == jNull {
		labels = &jvalue{kind: jObject}
		root.set("Labels", labels)
	}
	if labels.kind != jObject {
		return nil, deny("Labels", "must be an object of strings")
	}
	// The engine keys labels case-sensitively, but set (like the rest of
	// the filter) matches keys under case folding: a key that folds to the
	// Talos label without being it ("TALOS.MANAGED", "taloſ.managed") would
	// be overwritten in its own spelling, leaving a container without the
	// real label that nobody could then manage. Refuse it.
	lf := foldKey(f.label)
	for _, m := range labels.obj {
		if m.fold == lf && m.key != f.label {
			return nil, deny(join("Labels", m.key), "is a case or Unicode variant of the Talos label %q; the proxy sets that label itself", f.label)
		}
	}
	labels.set(f.label, &jvalue{kind: jString, s: LabelManagedValue})
	return root.encode(nil), nil
}

// checkUpdate inspects a container-update body (resources and restart
// policy) and returns the JSON to forward.
func (f bodyFilter) checkUpdate(body []byte) ([]byte, error) {
	root, err := parseJSON(body)
	if err != nil {
		return nil, deny("", "invalid JSON: %v", err)
	}
	if err := strictKeys("", root, updateFields); err != nil {
		return nil, err
	}
	if err := checkResources("", root); err != nil {
		return nil, err
	}
	return root.encode(nil), nil
}

// mustBeEmpty denies a field that is present with a non-empty value.
func mustBeEmpty(obj *jvalue, where, name, why string) error {
	if v := obj.get(name); !v.isEmpty() {
		return deny(join(where, name), "%s", why)
	}
	return nil
}

func checkResources(where string, obj *jvalue) error {
	if err := mustBeEmpty(obj, where, "CgroupParent", "a custom cgroup parent is not allowed"); err != nil {
		return err
	}
	if err := mustBeEmpty(obj, where, "Devices", "host devices are not allowed"); err != nil {
		return err
	}
	if err := mustBeEmpty(obj, where, "DeviceRequests", "device requests (GPUs and other devices) are not allowed"); err != nil {
		return err
	}
	return mustBeEmpty(obj, where, "DeviceCgroupRules", "device cgroup rules are not allowed")
}

// stringField returns the string value of a field ("" when absent or null),
// or an error when it is another type.
func stringField(obj *jvalue, where, name string) (string, error) {
	v := obj.get(name)
	if v == nil || v.kind == jNull {
		return "", nil
	}
	if v.kind != jString {
		return "", deny(join(where, name), "must be a string, not %s", v.kind)
	}
	return v.s, nil
}

// stringList returns the strings of an array field (nil when absent or null).
func stringList(obj *jvalue, where, name string) ([]string, error) {
	v := obj.get(name)
	if v == nil || v.kind == jNull {
		return nil, nil
	}
	if v.kind != jArray {
		return nil, deny(join(where, name), "must be an array of strings, not %s", v.kind)
	}
	out := make([]string, 0, len(v.arr))
	for _, e := range v.arr {
		if e.kind != jString {
			return nil, deny(join(where, name), "must be an array of strings")
		}
		out = append(out, e.s)
	}
	return out, nil
}

// namespaceMode checks a namespace mode field: host and container:<id>
// (joining another container's namespace) are denied, as is anything not
// in allowed.
func namespaceMode(obj *jvalue, name string, allowed ...string) error {
	where := "HostConfig." + name
	s, err := stringField(obj, "HostConfig", name)
	if err != nil {
		return err
	}
	ls := strings.ToLower(strings.TrimSpace(s))
	switch {
	case ls == "host":
		return deny(where, "host namespace %q is not allowed", s)
	case strings.HasPrefix(ls, "container:"):
		return deny(where, "joining another container's namespace (%q) is not allowed", truncate(s, 80))
	case !slices.Contains(allowed, s):
		return deny(where, "value %q is not allowed (allowed: %q)", truncate(s, 80), allowed)
	}
	return nil
}

func (f bodyFilter) checkHostConfig(hc *jvalue) error {
	const where = "HostConfig"
	if err := strictKeys(where, hc, hostConfigFields); err != nil {
		return err
	}
	// ReadonlyRootfs must be present and true.
	if v := hc.get("ReadonlyRootfs"); v == nil || v.kind != jBool || !v.b {
		return deny("HostConfig.ReadonlyRootfs", "required and must be true")
	}
	if v := hc.get("Privileged"); v != nil && v.kind != jNull && !(v.kind == jBool && !v.b) {
		return deny("HostConfig.Privileged", "privileged containers are not allowed")
	}
	caps, err := stringList(hc, where, "CapAdd")
	if err != nil {
		return err
	}
	for _, c := range caps {
		if !capAllowed(f.profile.CapAdd, c) {
			return deny("HostConfig.CapAdd", "adding capability %q is not allowed (profile %q allows %q)", truncate(c, 40), f.profile.Name, f.profile.CapAdd)
		}
	}
	// Network mode: allowlist, never host or container:.
	nm, err := stringField(hc, where, "NetworkMode")
	if err != nil {
		return err
	}
	if err := f.checkNetworkMode("HostConfig.NetworkMode", nm); err != nil {
		return err
	}
	if err := namespaceMode(hc, "PidMode", ""); err != nil {
		return err
	}
	if err := namespaceMode(hc, "IpcMode", "", "private", "none", "shareable"); err != nil {
		return err
	}
	if err := namespaceMode(hc, "UTSMode", ""); err != nil {
		return err
	}
	if err := namespaceMode(hc, "UsernsMode", ""); err != nil {
		return err
	}
	if err := namespaceMode(hc, "CgroupnsMode", "", "private"); err != nil {
		return err
	}
	if err := namespaceMode(hc, "Cgroup", ""); err != nil {
		return err
	}
	if err := checkResources(where, hc); err != nil {
		return err
	}
	opts, err := stringList(hc, where, "SecurityOpt")
	if err != nil {
		return err
	}
	for _, o := range opts {
		if !slices.Contains(allowedSecOpts, strings.TrimSpace(o)) {
			why := "only no-new-privileges is allowed"
			if strings.Contains(strings.ToLower(o), "unconfined") || strings.Contains(strings.ToLower(o), "disable") {
				why = "unconfined or disabled confinement is not allowed"
			}
			return deny("HostConfig.SecurityOpt", "%q: %s", truncate(o, 80), why)
		}
	}
	for _, c := range []struct{ name, why string }{
		{"Sysctls", "sysctls are not allowed"},
		{"VolumesFrom", "mounting another container's volumes is not allowed"},
		{"PortBindings", "publishing ports on the host is not allowed"},
		{"PublishAllPorts", "publishing ports on the host is not allowed"},
		{"Links", "legacy links are not allowed"},
		{"Annotations", "runtime annotations are not allowed"},
		{"MaskedPaths", "overriding the masked paths is not allowed"},
		{"ReadonlyPaths", "overriding the read-only paths is not allowed"},
	} {
		if err := mustBeEmpty(hc, where, c.name, c.why); err != nil {
			return err
		}
	}
	if v := hc.get("MaskedPaths"); v != nil && v.kind == jArray {
		return deny("HostConfig.MaskedPaths", "overriding the masked paths is not allowed")
	}
	if v := hc.get("ReadonlyPaths"); v != nil && v.kind == jArray {
		return deny("HostConfig.ReadonlyPaths", "overriding the read-only paths is not allowed")
	}
	for _, c := range []struct {
		name    string
		allowed []string
	}{{"VolumeDriver", []string{"", "local"}}, {"Runtime", allowedRuntimes}, {"Isolation", allowedIsolation}} {
		s, err := stringField(hc, where, c.name)
		if err != nil {
			return err
		}
		if !slices.Contains(c.allowed, s) {
			return deny(join(where, c.name), "value %q is not allowed (allowed: %q)", truncate(s, 80), c.allowed)
		}
	}
	if v := hc.get("OomScoreAdj"); v != nil && v.kind == jNumber && strings.HasPrefix(v.s, "-") {
		return deny("HostConfig.OomScoreAdj", "a negative OOM score (%s) is not allowed", v.s)
	}
	if v := hc.get("StorageOpt"); v != nil && v.kind == jObject {
		for _, m := range v.obj {
			if m.key != "size" {
				return deny("HostConfig.StorageOpt", "option %q is not allowed (only size)", truncate(m.key, 40))
			}
		}
	}
	if lc := hc.get("LogConfig"); lc != nil && lc.kind != jNull {
		if err := strictKeys("HostConfig.LogConfig", lc, logConfigFields); err != nil {
			return err
		}
		t, err := stringField(lc, "HostConfig.LogConfig", "Type")
		if err != nil {
			return err
		}
		if !slices.Contains(allowedLogTypes, t) {
			return deny("HostConfig.LogConfig.Type", "log driver %q is not allowed (allowed: %q)", truncate(t, 40), allowedLogTypes)
		}
	}
	binds, err := stringList(hc, where, "Binds")
	if err != nil {
		return err
	}
	for _, b := range binds {
		if err := f.checkBind(b); err != nil {
			return err
		}
	}
	if ms := hc.get("Mounts"); ms != nil && ms.kind != jNull {
		if ms.kind != jArray {
			return deny("HostConfig.Mounts", "must be an array")
		}
		for i, m := range ms.arr {
			if err := f.checkMount(fmt.Sprintf("HostConfig.Mounts[%d]", i), m); err != nil {
				return err
			}
		}
	}
	return nil
}

func capAllowed(allowed []string, c string) bool {
	norm := func(s string) string { return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CAP_") }
	n := norm(c)
	if n == "ALL" {
		return false
	}
	for _, a := range allowed {
		if norm(a) == n {
			return true
		}
	}
	return false
}

func (f bodyFilter) checkNetworkMode(where, nm string) error {
	l := strings.ToLower(strings.TrimSpace(nm))
	switch {
	case l == "host":
		return deny(where, "host network is not allowed")
	case strings.HasPrefix(l, "container:"):
		return deny(where, "joining another container's network (%q) is not allowed", truncate(nm, 80))
	}
	if nm == "" {
		nm = "default"
	}
	if !slices.Contains(f.profile.networkModes(), nm) {
		return deny(where, "network %q is not allowed (profile %q allows %q)", truncate(nm, 80), f.profile.Name, f.profile.networkModes())
	}
	return nil
}

func (f bodyFilter) checkNetworkingConfig(nc *jvalue) error {
	if err := strictKeys("NetworkingConfig", nc, netConfigFields); err != nil {
		return err
	}
	ec := nc.get("EndpointsConfig")
	if ec == nil || ec.kind == jNull {
		return nil
	}
	if ec.kind != jObject {
		return deny("NetworkingConfig.EndpointsConfig", "must be an object")
	}
	for _, m := range ec.obj {
		if err := f.checkNetworkMode("NetworkingConfig.EndpointsConfig", m.key); err != nil {
			return err
		}
		if err := checkEndpointSettings(join("NetworkingConfig.EndpointsConfig", m.key), m.val); err != nil {
			return err
		}
	}
	return nil
}

// checkEndpointSettings checks the settings of one network endpoint. The
// engine resolves a user-defined network by NetworkID before its name, so
// {"allowed-net": {"NetworkID": "<another network>"}} would attach the
// container to a network the profile does not allow; DriverOpts, Links and
// the addressing fields are not for sandboxed skills either. Those must be
// empty (the moby client sends them as "" or null); unknown fields are
// refused.
func checkEndpointSettings(where string, es *jvalue) error {
	if es == nil || es.kind == jNull {
		return nil
	}
	if err := strictKeys(where, es, endpointFields); err != nil {
		return err
	}
	for _, m := range es.obj {
		if _, forbidden := endpointMustBeEmpty[m.fold]; forbidden && !m.val.isEmpty() {
			return deny(join(where, m.key), "must be empty: a sandboxed container joins only the networks its profile allows, by name")
		}
	}
	return nil
}

// checkBind checks one HostConfig.Binds entry, "src:dst[:opts]".
func (f bodyFilter) checkBind(b string) error {
	src, _, found := strings.Cut(b, ":")
	if !found || src == "" {
		// "/dst" alone is an anonymous volume.
		if !found && strings.HasPrefix(b, "/") {
			return nil
		}
		return deny("HostConfig.Binds", "entry %q is malformed (want source:destination[:options])", truncate(b, 120))
	}
	if strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") || strings.Contains(src, "/") || strings.Contains(src, `\`) {
		if err := f.checkBindSource("HostConfig.Binds", src); err != nil {
			return err
		}
		return checkBindOptions(b)
	}
	if !f.profile.AllowNamedVolumes {
		return deny("HostConfig.Binds", "named volume %q is not allowed (profile %q)", truncate(src, 80), f.profile.Name)
	}
	return nil
}

// checkBindOptions checks the options of an allowed host bind,
// "src:dst:opts": the same propagation modes as Mounts' BindOptions allow,
// "ro"/"rw", and nothing else (no SELinux relabelling of the host path with
// "z"/"Z", no "rshared" propagation back to the host).
func checkBindOptions(b string) error {
	parts := strings.Split(b, ":")
	if len(parts) < 3 {
		return nil
	}
	if len(parts) > 3 {
		return deny("HostConfig.Binds", "entry %q is malformed (want source:destination[:options])", truncate(b, 120))
	}
	for _, o := range strings.Split(parts[2], ",") {
		if o == "ro" || o == "rw" || slices.Contains(allowedPropagate, o) && o != "" {
			continue
		}
		return deny("HostConfig.Binds", "option %q of %q is not allowed (allowed: ro, rw, %q)", truncate(o, 40), truncate(b, 120), allowedPropagate)
	}
	return nil
}

// checkBindSource allows a host path only when it is clean and equal to or
// beneath an allowlisted directory (the allowlist is empty by default, so
// no bind at all).
func (f bodyFilter) checkBindSource(where, src string) error {
	if !strings.HasPrefix(src, "/") || path.Clean(src) != src {
		return deny(where, "bind source %q must be an absolute, clean path", truncate(src, 120))
	}
	for _, a := range f.profile.BindAllowlist {
		if src == a || strings.HasPrefix(src, a+"/") {
			return nil
		}
	}
	return deny(where, "bind source blocked: %q is outside the allowlist %q", truncate(src, 120), f.profile.BindAllowlist)
}

func (f bodyFilter) checkMount(where string, m *jvalue) error {
	if err := strictKeys(where, m, mountFields); err != nil {
		return err
	}
	typ, err := stringField(m, where, "Type")
	if err != nil {
		return err
	}
	src, err := stringField(m, where, "Source")
	if err != nil {
		return err
	}
	for _, k := range []string{"ImageOptions", "ClusterOptions"} {
		if err := mustBeEmpty(m, where, k, "not allowed"); err != nil {
			return err
		}
	}
	switch typ {
	case "bind":
		if err := mustBeEmpty(m, where, "VolumeOptions", "not allowed on a bind mount"); err != nil {
			return err
		}
		if err := f.checkBindSource(where+".Source", src); err != nil {
			return err
		}
		if bo := m.get("BindOptions"); bo != nil && bo.kind != jNull {
			if err := strictKeys(where+".BindOptions", bo, bindOptFields); err != nil {
				return err
			}
			if err := mustBeEmpty(bo, where+".BindOptions", "CreateMountpoint", "creating host directories is not allowed"); err != nil {
				return err
			}
			p, err := stringField(bo, where+".BindOptions", "Propagation")
			if err != nil {
				return err
			}
			if !slices.Contains(allowedPropagate, p) {
				return deny(where+".BindOptions.Propagation", "%q is not allowed (allowed: %q)", truncate(p, 40), allowedPropagate)
			}
		}
	case "volume":
		if err := mustBeEmpty(m, where, "BindOptions", "not allowed on a volume mount"); err != nil {
			return err
		}
		if src != "" && !f.profile.AllowNamedVolumes {
			return deny(where+".Source", "named volume %q is not allowed (profile %q)", truncate(src, 80), f.profile.Name)
		}
		if vo := m.get("VolumeOptions"); vo != nil && vo.kind != jNull {
			if err := strictKeys(where+".VolumeOptions", vo, volumeOptFields); err != nil {
				return err
			}
			if err := mustBeEmpty(vo, where+".VolumeOptions", "DriverConfig", "volume driver options (which can bind host paths) are not allowed"); err != nil {
				return err
			}
		}
	case "tmpfs":
		if src != "" {
			return deny(where+".Source", "a tmpfs mount has no source")
		}
		for _, k := range []string{"BindOptions", "VolumeOptions"} {
			if err := mustBeEmpty(m, where, k, "not allowed on a tmpfs mount"); err != nil {
				return err
			}
		}
	default:
		return deny(where+".Type", "mount type %q is not allowed (allowed: bind, volume, tmpfs)", truncate(typ, 40))
	}
	return nil
}
