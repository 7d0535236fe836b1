package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/health"
	"github.com/talos-ironclad/talos/internal/host"
	"github.com/talos-ironclad/talos/internal/redact"
	"github.com/talos-ironclad/talos/internal/svccheck"
)

// checks returns one health check per dependency, configured or embedded,
// plus the host's disk, memory and home directory, so /health always lists
// every check. Service checks are not critical: a service that goes down
// degrades the daemon, which keeps serving from what still works. The home
// directory is critical: without it nothing can be persisted.
func (d *Daemon) checks() []health.Check {
	var cs []health.Check

	if d.redis != nil {
		r := d.redis
		policy := d.cfg.RedisMaxMemoryPolicy
		cs = append(cs, health.Check{Name: NameRedis, Func: func(ctx context.Context) (string, error) {
			return redisCheck(ctx, r, policy)
		}})
	} else {
		cs = append(cs, embedded(NameRedis, redisOff))
	}

	if d.cfg.ChromaURL != "" {
		url := d.cfg.ChromaURL
		cs = append(cs, health.Check{Name: NameChroma, Func: func(ctx context.Context) (string, error) {
			if err := svccheck.ChromaHeartbeat(ctx, d.hc, url); err != nil {
				return "", err
			}
			return "heartbeat from " + redact.URL(url), nil
		}})
	} else if d.memory != nil {
		s := d.memory
		cs = append(cs, health.Check{Name: NameChroma, Func: func(ctx context.Context) (string, error) {
			return d.describeSQLMemory(ctx, s)
		}})
	} else if d.memoryInSQL() {
		why := d.memoryErr
		if why == nil {
			why = errors.New("the memories in the relational store were not opened at boot; see the chroma boot step")
		}
		cs = append(cs, health.Check{Name: NameChroma, Func: func(ctx context.Context) (string, error) {
			return "", why
		}})
	} else {
		cs = append(cs, health.Check{Name: NameChroma, Func: func(ctx context.Context) (string, error) {
			return d.statEmbeddedChroma()
		}})
	}

	if d.sql != nil {
		db := d.sql
		cs = append(cs, health.Check{Name: NamePostgres, Func: func(ctx context.Context) (string, error) {
			if err := db.PingContext(ctx); err != nil {
				return "", talos.E(talos.CodePostgres, "health.postgres", "the relational store "+db.String()+" does not answer", err)
			}
			return d.describeSQL(ctx, db)
		}})
	}

	if d.docker != nil {
		cs = append(cs, dockerCheck(NameDocker, d.docker, redact.URL(d.cfg.DockerHost)))
	} else {
		cs = append(cs, embedded(NameDocker, dockerOff))
	}
	if d.proxy != nil {
		cs = append(cs, dockerCheck(NameSocketProxy, d.proxy, redact.URL(d.cfg.SocketProxyURL)))
	}

	if d.cfg.OllamaURL != "" {
		url := d.cfg.OllamaURL
		cs = append(cs, health.Check{Name: NameOllama, Func: func(ctx context.Context) (string, error) {
			v, err := svccheck.OllamaVersion(ctx, d.hc, url)
			if err != nil {
				return "", err
			}
			return "Ollama " + v + " at " + redact.URL(url), nil
		}})
	} else {
		cs = append(cs, embedded(NameOllama, ollamaOff))
	}
	if d.opts.GPU != nil {
		cs = append(cs, d.gpuCheck())
	}

	home := d.cfg.Home
	cs = append(cs,
		health.Check{Name: NameHome, Critical: true, Func: func(ctx context.Context) (string, error) {
			if err := writableDir(home); err != nil {
				return "", err
			}
			return home + " is writable", nil
		}},
		health.Check{Name: NameDisk, Critical: true, Func: func(ctx context.Context) (string, error) {
			return diskCheck(home)
		}},
		health.Check{Name: NameMemory, Func: func(ctx context.Context) (string, error) {
			return memoryCheck("/proc/meminfo")
		}},
	)
	return cs
}

// redisCheck is the runtime Redis check: PING, then the same
// maxmemory-policy check as the boot step (stepRedis), so /health and the
// ready marker agree. A wrong policy degrades (warn) with the boot's
// detail and message; no answer fails.
func redisCheck(ctx context.Context, r *svccheck.Redis, policy string) (string, error) {
	if err := r.Ping(ctx); err != nil {
		return "", err
	}
	desc, perr := r.CheckPolicy(ctx, policy)
	detail := redisDetail(r, desc)
	if perr != nil {
		return detail, health.Warnf("%v", perr)
	}
	return detail, nil
}

// redisDetail is the detail of a Redis that answered: the boot step and
// the health check share it.
func redisDetail(r *svccheck.Redis, policyDesc string) string {
	detail := "PONG from " + r.Addr()
	if policyDesc != "" {
		detail += ", " + policyDesc
	}
	return detail
}

func embedded(name, detail string) health.Check {
	return health.Check{Name: name, Func: func(context.Context) (string, error) { return detail, nil }}
}

func dockerCheck(name string, c *svccheck.Docker, shown string) health.Check {
	return health.Check{Name: name, Func: func(ctx context.Context) (string, error) {
		api, err := c.Ping(ctx)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("engine at %s, API %s", shown, api), nil
	}}
}

func isDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("%s is missing: %w (run `talos init`)", dir, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return nil
}

// diskCheck is the disk check (what `df` shows): ok below 90 % used, warn
// from 90 %, fail from 98 %.
func diskCheck(path string) (string, error) {
	u, total, err := host.StatfsUsage(path)
	if err != nil {
		return "", err
	}
	var used float64
	if total > 0 {
		used = float64(u) / float64(total)
	}
	detail := fmt.Sprintf("%.1f%% used on the file system of %s", used*100, path)
	switch {
	case used >= DiskFailFraction:
		return detail, fmt.Errorf("disk almost full (at least %.0f%%): free space now or writes will fail", DiskFailFraction*100)
	case used >= DiskWarnFraction:
		return detail, health.Warnf("disk at least %.0f%% full: free space soon", DiskWarnFraction*100)
	}
	return detail, nil
}

// memoryCheck is the memory check: warn when MemAvailable is 1 GiB or less.
func memoryCheck(meminfo string) (string, error) {
	data, err := os.ReadFile(meminfo)
	if err != nil {
		return "", health.Warnf("cannot read %s: %v", meminfo, err)
	}
	avail, err := ParseMemAvailable(data)
	if err != nil {
		return "", health.Warnf("%v", err)
	}
	detail := fmt.Sprintf("%d MiB available", avail>>20)
	if avail <= MemoryWarnBytes {
		return detail, health.Warnf("1 GiB or less of memory available")
	}
	return detail, nil
}

// ParseMemAvailable returns MemAvailable, in bytes, from the text of
// /proc/meminfo ("MemAvailable:   123456 kB").
func ParseMemAvailable(meminfo []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(meminfo))
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, "MemAvailable:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			return 0, fmt.Errorf("MemAvailable line %q has no value", line)
		}
		n, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("MemAvailable value %q is not a number", f[0])
		}
		mult := uint64(1)
		if len(f) > 1 {
			switch strings.ToLower(f[1]) {
			case "kb":
				mult = 1024
			case "mb":
				mult = 1 << 20
			case "b":
			default:
				return 0, fmt.Errorf("MemAvailable unit %q is unknown", f[1])
			}
		}
		if n > ^uint64(0)/mult {
			return 0, fmt.Errorf("MemAvailable value %s %s overflows", f[0], f[1])
		}
		return n * mult, nil
	}
	return 0, errors.New("no MemAvailable line in /proc/meminfo (kernel older than 3.14?)")
}
