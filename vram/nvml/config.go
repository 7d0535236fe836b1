package nvml

import (
	"context"
	"io"
	"time"

	"github.com/talos-ironclad/talos/vram"
)

// DefaultInitRetry is how long a failed NVML initialisation is remembered
// before it is tried again.
const DefaultInitRetry = 30 * time.Second

// Config selects the GPU and the readers' settings. The zero value reads GPU
// 0 with the defaults.
type Config struct {
	Index      int           // GPU index as NVML and nvidia-smi number them
	SMIPath    string        // nvidia-smi command; "" = DefaultSMIPath (looked up in PATH)
	SMITimeout time.Duration // 0 = DefaultSMITimeout (5 s)
	InitRetry  time.Duration // 0 = DefaultInitRetry

	// Run runs nvidia-smi: the command name and its arguments, output into
	// stdout and stderr, the child killed when ctx ends. nil runs it with
	// os/exec. A process with a reaper.Reaper (the one owner of wait4) must
	// start it through the Reaper, or the wait can fail with ECHILD:
	//
	//	Run: func(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error {
	//		c := r.CommandContext(ctx, name, args...)
	//		c.Cmd.Stdout, c.Cmd.Stderr = stdout, stderr
	//		return c.Run()
	//	}
	Run func(ctx context.Context, name string, args []string, stdout, stderr io.Writer) error
}

func (c Config) withDefaults() Config {
	if c.SMIPath == "" {
		c.SMIPath = DefaultSMIPath
	}
	if c.SMITimeout <= 0 {
		c.SMITimeout = DefaultSMITimeout
	}
	if c.InitRetry <= 0 {
		c.InitRetry = DefaultInitRetry
	}
	if c.Run == nil {
		c.Run = execRun
	}
	if c.Index < 0 {
		c.Index = 0
	}
	return c
}

// Detect returns the GPU reader Talos uses: NVML first, nvidia-smi second,
// with the last good reading remembered (vram.Fallback).
func Detect(cfg Config) vram.GPU {
	return vram.Fallback(New(cfg), NewSMI(cfg))
}
