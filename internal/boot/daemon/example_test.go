package daemon_test

import (
	"context"
	"fmt"
	"os"

	"github.com/talos-ironclad/talos/internal/boot/daemon"
	"github.com/talos-ironclad/talos/internal/config"
	"github.com/talos-ironclad/talos/internal/layout"
)

// A daemon with no services configured boots on its embedded defaults.
func Example() {
	home, _ := os.MkdirTemp("", "talos-example-")
	defer os.RemoveAll(home)
	l, _ := layout.New(home, nil)
	if _, err := l.Create(); err != nil {
		panic(err)
	}
	env := map[string]string{"BASIC_AUTH_PASS": "Xy7!kq2Lm9#pQw4Zr"}
	cfg, err := config.Load(config.LoadOptions{Home: home, SkipFiles: true,
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
	if err != nil {
		panic(err)
	}
	d, _ := daemon.New(cfg, daemon.Options{Version: "example", HealthAddr: "127.0.0.1:0"})
	if err := d.Start(context.Background()); err != nil {
		panic(err)
	}
	for _, s := range d.Report().Steps {
		fmt.Println(s.Name, s.Outcome)
	}
	_, err = os.Stat(d.ReadyPath())
	fmt.Println("marker written:", err == nil)
	_ = d.Stop(context.Background())
	_, err = os.Stat(d.ReadyPath())
	fmt.Println("marker removed:", os.IsNotExist(err))
	// Output:
	// init ok
	// directories ok
	// config ok
	// prompts ok
	// redis ok
	// postgres ok
	// chroma ok
	// docker ok
	// socket-proxy skipped
	// ollama ok
	// health-server ok
	// ready ok
	// marker written: true
	// marker removed: true
}
