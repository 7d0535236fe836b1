package svccheck_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/talos-ironclad/talos"
	"github.com/talos-ironclad/talos/internal/svccheck"
)

func ExampleChromaHeartbeat() {
	chroma := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == svccheck.ChromaHeartbeatPath {
			fmt.Fprint(w, `{"nanosecond heartbeat": 1}`)
			return
		}
		w.WriteHeader(http.StatusGone) // what Chroma ≥ 1.0 answers on /api/v1
	}))
	defer chroma.Close()
	fmt.Println(svccheck.ChromaHeartbeat(context.Background(), nil, chroma.URL))

	chroma.Close()
	err := svccheck.ChromaHeartbeat(context.Background(), nil, chroma.URL)
	fmt.Println(errors.Is(err, talos.ErrChroma))
	// Output:
	// <nil>
	// true
}
