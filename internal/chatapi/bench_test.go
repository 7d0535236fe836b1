package chatapi_test

import (
	"bufio"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/talos-ironclad/talos/internal/chatapi"
	"github.com/talos-ironclad/talos/llm"
	"github.com/talos-ironclad/talos/llm/llmtest"
)

// BenchmarkTimeToFirstByte is the time from sending POST /api/v1/chat with
// Accept: text/event-stream to reading the first token event, over
// loopback HTTP, with a zero-latency scripted model (so it is the loop's
// and the server's own share): the firewall on the message, prompt
// assembly, the stream guard's hold-back, the SSE write and flush.
func BenchmarkTimeToFirstByte(b *testing.B) {
	local := llmtest.NewFake("qwen")
	local.Default = &llmtest.Reply{Text: strings.Repeat("A streamed answer that goes on for a while. ", 20), Usage: llm.Usage{PromptTokens: 1}}
	srv := newServer(b, local, chatapi.Config{RateLimit: 1 << 30})
	client := &http.Client{}
	times := make([]time.Duration, 0, b.N)
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+chatapi.Path, strings.NewReader(`{"message":"tell me something"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "text/event-stream")
		req.SetBasicAuth(user, pass)
		began := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "data: ") {
				break
			}
		}
		times = append(times, time.Since(began))
		for sc.Scan() {
		}
		resp.Body.Close()
	}
	slices.Sort(times)
	b.ReportMetric(float64(times[len(times)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(times[len(times)*99/100].Microseconds())/1000, "p99-ms")
}
