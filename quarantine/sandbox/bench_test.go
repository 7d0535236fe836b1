package sandbox_test

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"

	"github.com/talos-ironclad/talos/internal/testenv"
	"github.com/talos-ironclad/talos/quarantine/sandbox"
)

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// BenchmarkSandboxVsBare times a sandboxed run of a trivial Python skill
// (staging, hashing, the proxy, the isolation self-check, the supervisor,
// log capture, inspect, removal) against the bare equivalent of
// `docker run --rm IMAGE python3 -c "print('hello')"` done with the API
// directly on the engine (create, start, wait, logs, remove), and against
// the same bare run with Config.NetworkDisabled (no network stack at all,
// as the sandbox asks for), rotating the three in one loop so all see the
// same machine load. Run it with -benchtime=20x for the p50 of 20 each; it
// reports the medians, ratio (sandbox / bare, the goal is ≤ 1.25) and
// ratio-nonet (sandbox / bare without a network stack: the sandbox's own
// overhead).
func BenchmarkSandboxVsBare(b *testing.B) {
	host, img := benchEngine(b)
	s, err := sandbox.New(sandbox.Config{DockerHost: host, Image: img, Timeout: 30 * time.Second, StagingDir: b.TempDir() + "/stage"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	raw, err := client.New(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	dir := benchSkill(b)
	ctx := context.Background()
	sandboxed := func() {
		res, err := s.Run(ctx, sandbox.Request{Dir: dir})
		if err != nil || !res.Verdict.Passed() || string(res.Stdout) != "hello\n" {
			b.Fatalf("sandboxed run: %v %+v %q", err, res.Verdict, res.Stdout)
		}
	}
	bareRun := func(noNetStack bool) {
		c, err := raw.ContainerCreate(ctx, client.ContainerCreateOptions{
			Config:     &container.Config{Image: img, Cmd: []string{"python3", "-c", "print('hello')"}, NetworkDisabled: noNetStack},
			HostConfig: &container.HostConfig{NetworkMode: "none"},
		})
		if err != nil {
			b.Fatal(err)
		}
		defer raw.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		w := raw.ContainerWait(ctx, c.ID, client.ContainerWaitOptions{Condition: container.WaitConditionNextExit})
		if _, err := raw.ContainerStart(ctx, c.ID, client.ContainerStartOptions{}); err != nil {
			b.Fatal(err)
		}
		select {
		case r := <-w.Result:
			if r.StatusCode != 0 {
				b.Fatalf("bare run exited %d", r.StatusCode)
			}
		case err := <-w.Error:
			b.Fatal(err)
		}
		rc, err := raw.ContainerLogs(ctx, c.ID, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true})
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, rc)
		rc.Close()
	}
	bare := func() { bareRun(false) }
	bareNoNet := func() { bareRun(true) }
	sandboxed() // warm up: image layers, page cache, version negotiation
	bare()
	bareNoNet()
	var ds, db, dn []time.Duration
	b.ResetTimer()
	type timed struct {
		run func()
		out *[]time.Duration
	}
	for i := range b.N {
		order := []timed{{sandboxed, &ds}, {bare, &db}, {bareNoNet, &dn}}
		for range i % 3 { // rotate, so each goes first as often
			order = append(order[1:], order[0])
		}
		for _, o := range order {
			t0 := time.Now()
			o.run()
			*o.out = append(*o.out, time.Since(t0))
		}
	}
	b.StopTimer()
	ms, mb, mn := median(ds), median(db), median(dn)
	b.ReportMetric(float64(ms.Microseconds())/1000, "sandbox-p50-ms")
	b.ReportMetric(float64(mb.Microseconds())/1000, "bare-p50-ms")
	b.ReportMetric(float64(mn.Microseconds())/1000, "bare-nonet-p50-ms")
	b.ReportMetric(float64(ms)/float64(mb), "ratio")
	b.ReportMetric(float64(ms)/float64(mn), "ratio-nonet")
}

// benchEngine returns the harness's engine and Python image, or skips.
func benchEngine(b *testing.B) (host, img string) {
	b.Helper()
	_, img = engine(b)
	return testenv.DockerHost(b), img
}

// benchSkill is a trivial skill that prints hello.
func benchSkill(b *testing.B) string {
	return writeSkill(b, "bench_skill", "print('hello')\n", false)
}
