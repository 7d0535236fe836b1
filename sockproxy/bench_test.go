package sockproxy_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/sockproxy"
)

// listSamplesPerOp is how many direct and proxied lists one iteration of
// BenchmarkEngineListLatency times.
const listSamplesPerOp = 100

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkEngineListLatency measures GET /containers/json (filtered to Talos
// containers, as the proxy does) directly on the engine and through the
// proxy, alternating the two in one loop so both see the same machine load.
// It reports the medians and their difference. Each iteration takes
// listSamplesPerOp samples of each, so one -benchtime (say 20x) suits this
// benchmark and the much slower cycle benchmark in the same run.
func BenchmarkEngineListLatency(b *testing.B) {
	host := testenv.DockerHost(b)
	direct := newClient(b, host)
	pt := startProxy(b, sockproxy.Config{Upstream: host, RateLimit: -1})
	proxied := pt.client(b)
	ctx := context.Background()
	opts := client.ContainerListOptions{All: true, Filters: make(client.Filters).Add("label", sockproxy.LabelManaged+"="+sockproxy.LabelManagedValue)}
	for _, c := range []*client.Client{direct, proxied} { // warm up: negotiate, open connections
		if _, err := c.ContainerList(ctx, opts); err != nil {
			b.Fatal(err)
		}
	}
	var dd, pd []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N*listSamplesPerOp; i++ {
		t0 := time.Now()
		if _, err := direct.ContainerList(ctx, opts); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := proxied.ContainerList(ctx, opts); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		dd, pd = append(dd, t1.Sub(t0)), append(pd, t2.Sub(t1))
	}
	b.StopTimer()
	md, mp := median(dd), median(pd)
	b.ReportMetric(float64(md.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(mp.Microseconds()), "proxy-p50-µs")
	b.ReportMetric(float64((mp - md).Microseconds()), "overhead-p50-µs")
}

// BenchmarkEngineCycle measures a create/start/wait/remove cycle of a busybox
// container directly and through the proxy (maintenance profile, so remove
// is allowed), alternating, and reports the medians and their ratio.
func BenchmarkEngineCycle(b *testing.B) {
	host := testenv.DockerHost(b)
	image := testenv.BusyboxImage(b)
	direct := newClient(b, host)
	pt := startProxy(b, sockproxy.Config{Upstream: host, RateLimit: -1, Profile: sockproxy.MaintenanceProfile()})
	proxied := pt.client(b)
	ctx := context.Background()
	cycle := func(c *client.Client) time.Duration {
		t0 := time.Now()
		res, err := c.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: image, Cmd: []string{"true"}},
			HostConfig: &container.HostConfig{ReadonlyRootfs: true, NetworkMode: "none"},
		})
		if err != nil {
			b.Fatal(err)
		}
		cleanupContainer(b, direct, res.ID)
		if _, err := c.ContainerStart(ctx, res.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
		w := c.ContainerWait(ctx, res.ID, client.ContainerWaitOptions{})
		select {
		case r := <-w.Result:
			if r.StatusCode != 0 {
				b.Fatalf("exit %d", r.StatusCode)
			}
		case err := <-w.Error:
			b.Fatal(err)
		}
		if _, err := c.ContainerRemove(ctx, res.ID, client.ContainerRemoveOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
		return time.Since(t0)
	}
	cycle(direct)
	cycle(proxied)
	var dd, pd []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dd = append(dd, cycle(direct))
		pd = append(pd, cycle(proxied))
	}
	b.StopTimer()
	md, mp := median(dd), median(pd)
	b.ReportMetric(float64(md.Milliseconds()), "direct-p50-ms")
	b.ReportMetric(float64(mp.Milliseconds()), "proxy-p50-ms")
	b.ReportMetric(float64(mp)/float64(md), "ratio")
}
